"""Tenants and their API keys, for the platform team: the same calls against AWS and the local stack.

A tenant owns jobs; API keys are how it authenticates, and come and go. Issuing a key creates an API
Gateway API key, records it in the tenants table, and puts it in the tenant's tier (the usage plan
``<stack name>-<tier>``); revoking one deletes it from API Gateway (refused at once) and marks it revoked
in the table (refused by the API too), while the tenant's jobs stay its own.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from shared.aws.tenants import TENANT_ID_PATTERN, Tenant, TenantExists, TenantKey, TenantStore, UnknownTenant
from shared.names import usage_plan_name

if TYPE_CHECKING:
    from mypy_boto3_apigateway import APIGatewayClient


class AdminError(Exception):
    """Something the operator asked for that cannot be done, said in words."""


@dataclass(frozen=True)
class IssuedKey:
    tenant_id: str
    api_key_id: str
    api_key: str
    tier: str


_ALREADY_OR_ABSENT = ("ConflictException", "NotFoundException")


def _not_found(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "NotFoundException"


class TenantAdmin:
    def __init__(
        self,
        apigateway: APIGatewayClient,
        store: TenantStore,
        stack_name: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._apigw = apigateway
        self._store = store
        self._stack_name = stack_name
        self._clock = clock

    def create_tenant(self, name: str, tier: str, tenant_id: str | None = None) -> Tenant:
        tenant_id = tenant_id or "t-" + secrets.token_hex(8)
        if not TENANT_ID_PATTERN.match(tenant_id):
            raise AdminError(
                f"tenant id {tenant_id!r} must be 1 to 63 lowercase letters, digits and '-', "
                "starting with a letter or digit"
            )
        self._plan_id(tier)  # refuse an unknown tier before anything is written
        tenant = Tenant(tenant_id, name, tier, int(self._clock()))
        try:
            self._store.create_tenant(tenant)
        except TenantExists:
            raise AdminError(f"tenant {tenant_id!r} exists already") from None
        return tenant

    def issue_key(self, tenant_id: str) -> IssuedKey:
        tenant = self._tenant(tenant_id)
        plan_id = self._plan_id(tenant.tier)
        key = self._apigw.create_api_key(
            name=f"{tenant_id}-{secrets.token_hex(4)}", description=f"tenant {tenant_id}", enabled=True
        )
        try:
            self._store.add_key(TenantKey(key["id"], tenant_id, int(self._clock())))
            # Last: outside every usage plan API Gateway refuses the key, so it works only once recorded.
            self._apigw.create_usage_plan_key(usagePlanId=plan_id, keyId=key["id"], keyType="API_KEY")
        except Exception:
            self._apigw.delete_api_key(apiKey=key["id"])
            raise
        return IssuedKey(tenant_id, key["id"], key["value"], tenant.tier)

    def revoke_key(self, api_key_id: str) -> TenantKey:
        revoked = self._store.revoke_key(api_key_id, int(self._clock()))
        if revoked is None:
            raise AdminError(f"no tenant holds an API key {api_key_id!r}")
        try:
            self._apigw.delete_api_key(apiKey=api_key_id)
        except ClientError as error:
            if not _not_found(error):  # deleted before, or a key API Gateway never held (local API_KEYS)
                raise
        return revoked

    def set_tier(self, tenant_id: str, tier: str) -> Tenant:
        tenant = self._tenant(tenant_id)
        plan_id = self._plan_id(tier)
        for key in self._store.keys_of(tenant_id):
            if not key.active:
                continue
            for plan in self._apigw.get_usage_plans(keyId=key.api_key_id).get("items", []):
                if plan["id"] != plan_id:
                    self._apigw.delete_usage_plan_key(usagePlanId=plan["id"], keyId=key.api_key_id)
            try:
                self._apigw.create_usage_plan_key(
                    usagePlanId=plan_id, keyId=key.api_key_id, keyType="API_KEY"
                )
            except ClientError as error:
                # ConflictException: already in that plan. NotFound: a key API Gateway never held.
                if error.response.get("Error", {}).get("Code") not in (
                    "ConflictException",
                    "NotFoundException",
                ):
                    raise
        try:
            self._store.set_tier(tenant_id, tier)
        except UnknownTenant:
            raise AdminError(f"no tenant {tenant_id!r}") from None
        return Tenant(tenant.tenant_id, tenant.name, tier, tenant.created_at)

    def show(self, tenant_id: str) -> tuple[Tenant, list[TenantKey]]:
        return self._tenant(tenant_id), self._store.keys_of(tenant_id)

    def tenants(self) -> list[Tenant]:
        return self._store.tenants()

    def tiers(self) -> dict[str, str]:
        """Tier name -> usage plan id, for this stack's plans."""
        prefix = usage_plan_name(self._stack_name, "")
        plans: dict[str, str] = {}
        for page in self._apigw.get_paginator("get_usage_plans").paginate():
            for plan in page.get("items", []):
                if plan.get("name", "").startswith(prefix):
                    plans[plan["name"][len(prefix) :]] = plan["id"]
        return plans

    def _plan_id(self, tier: str) -> str:
        plans = self.tiers()
        if tier not in plans:
            known = ", ".join(sorted(plans)) or "none"
            raise AdminError(
                f"no tier {tier!r}: stack {self._stack_name!r} has usage plans for {known} "
                f"(named {usage_plan_name(self._stack_name, '<tier>')})"
            )
        return plans[tier]

    def _tenant(self, tenant_id: str) -> Tenant:
        tenant = self._store.tenant(tenant_id)
        if tenant is None:
            raise AdminError(f"no tenant {tenant_id!r}")
        return tenant


def as_json(thing: Tenant | TenantKey | IssuedKey) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(thing)
