"""Conversion between models and DynamoDB's attribute-value form."""

from __future__ import annotations

import json
import zlib
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer

from shared.models import Job

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

# Free-form JSON is kept as a string: DynamoDB maps reject floats and empty keys, and these are
# only ever read whole.
_JSON_STRING_FIELDS = ("workflow", "metadata", "params")
# DynamoDB bills every write of an item by the whole item's size: the workflow, its largest part, is
# kept deflated (binary) when that is smaller, which it is for all but the tiniest graphs.
_COMPRESSED_FIELDS = ("workflow",)


def _to_dynamo_value(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _to_dynamo_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_dynamo_value(v) for v in value]
    return value


def _from_dynamo_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo_value(v) for v in value]
    return value


def serialize(plain: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(_to_dynamo_value(v)) for k, v in plain.items() if v is not None}


def deserialize(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _from_dynamo_value(_deserializer.deserialize(v)) for k, v in item.items()}


def value(v: Any) -> dict[str, Any]:
    """One attribute value, for expression values."""
    return _serializer.serialize(_to_dynamo_value(v))


def job_to_item(job: Job) -> dict[str, Any]:
    plain = job.model_dump(mode="json", exclude_none=True)
    for name in _JSON_STRING_FIELDS:
        if name in plain:
            plain[name] = json.dumps(plain[name], separators=(",", ":"))
    for name in _COMPRESSED_FIELDS:
        if name in plain:
            text = plain[name].encode()
            deflated = zlib.compress(text, 9)
            if len(deflated) < len(text):
                plain[name] = deflated
    error = plain.get("error")
    if error and "details" in error:
        error["details"] = json.dumps(error["details"], separators=(",", ":"))
    if not plain.get("cancel_requested"):
        plain.pop("cancel_requested", None)
    return serialize(plain)


def job_from_item(item: dict[str, Any]) -> Job:
    plain = deserialize(item)
    for name in _COMPRESSED_FIELDS:
        if isinstance(plain.get(name), Binary | bytes):
            raw = plain[name].value if isinstance(plain[name], Binary) else plain[name]
            plain[name] = zlib.decompress(raw).decode()
    for name in _JSON_STRING_FIELDS:
        if isinstance(plain.get(name), str):
            plain[name] = json.loads(plain[name])
    error = plain.get("error")
    if error and isinstance(error.get("details"), str):
        error["details"] = json.loads(error["details"])
    return Job.model_validate(plain)
