"""The local REST API's key store, as API Gateway's: which ``x-api-key`` values it lets through.

Two kinds of keys pass: the fixed ``API_KEYS`` of ``make up`` (each its own tenant, written to the
tenants table at start), and every key the tenants command (``python -m admin tenants --local``) issued
into moto's API Gateway, while it exists, is enabled and sits in a usage plan, as in AWS. Keys are
looked up on every request, so a key issued or revoked counts from the next one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_apigateway import APIGatewayClient


class LocalKeyStore:
    def __init__(self, fixed: Mapping[str, str], apigateway: APIGatewayClient) -> None:
        self._fixed = dict(fixed)
        self._apigw = apigateway

    def __call__(self, value: str) -> str | None:
        if value in self._fixed:
            return self._fixed[value]
        for page in self._apigw.get_paginator("get_api_keys").paginate(includeValues=True):
            for key in page.get("items", []):
                if key.get("value") == value:
                    return key["id"] if key.get("enabled") and self._in_a_plan(key["id"]) else None
        return None

    def _in_a_plan(self, key_id: str) -> bool:
        return bool(self._apigw.get_usage_plans(keyId=key_id).get("items"))
