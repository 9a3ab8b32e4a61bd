"""The tenants table: who a tenant is and which API keys are its own.

A job belongs to a tenant, never to an API key, so a key can be rotated (a new one issued, the old one
revoked) without orphaning a single job. The API reads one item per request (``key#<api key id>``,
cached in the warm function); the tenants command writes the rest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from shared.aws.items import value
from shared.errors import ServiceUnavailable
from shared.names import TENANTS_BY_TENANT_INDEX, TenantAttr, api_key_item_key, tenant_item_key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# A tenant id becomes part of S3 keys (outputs/<tenant>/...), so it is kept short and plain.
TENANT_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class TenantExists(Exception):
    pass


class UnknownTenant(Exception):
    pass


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    name: str
    tier: str
    created_at: int


@dataclass(frozen=True)
class TenantKey:
    api_key_id: str
    tenant_id: str
    created_at: int
    revoked_at: int | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _text(item: dict[str, Any], name: str) -> str:
    return str(item[name]["S"])


def _key_from_item(item: dict[str, Any]) -> TenantKey:
    revoked = item.get(TenantAttr.REVOKED_AT)
    return TenantKey(
        api_key_id=_text(item, TenantAttr.API_KEY_ID),
        tenant_id=_text(item, TenantAttr.TENANT_ID),
        created_at=int(item[TenantAttr.CREATED_AT]["N"]),
        revoked_at=int(revoked["N"]) if revoked else None,
    )


def _tenant_from_item(item: dict[str, Any]) -> Tenant:
    return Tenant(
        tenant_id=_text(item, TenantAttr.TENANT_ID),
        name=_text(item, TenantAttr.NAME),
        tier=_text(item, TenantAttr.TIER),
        created_at=int(item[TenantAttr.CREATED_AT]["N"]),
    )


def _is_condition_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class TenantStore:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._db = client
        self._table = table

    def key(self, api_key_id: str) -> TenantKey | None:
        """The key's record, revoked or not; None for a key no tenant was ever given."""
        try:
            item = self._db.get_item(
                TableName=self._table,
                Key={TenantAttr.ITEM: value(api_key_item_key(api_key_id))},
                # A key is used the moment it is issued: a stale read would refuse it.
                ConsistentRead=True,
            ).get("Item")
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "Unknown")
            raise ServiceUnavailable(
                f"the tenant directory could not be read ({code})", cause=code
            ) from error
        return _key_from_item(item) if item else None

    def tenant(self, tenant_id: str) -> Tenant | None:
        item = self._db.get_item(
            TableName=self._table,
            Key={TenantAttr.ITEM: value(tenant_item_key(tenant_id))},
            ConsistentRead=True,
        ).get("Item")
        return _tenant_from_item(item) if item else None

    def create_tenant(self, tenant: Tenant) -> None:
        created = self._put_new(
            {
                TenantAttr.ITEM: value(tenant_item_key(tenant.tenant_id)),
                TenantAttr.TENANT_ID: value(tenant.tenant_id),
                TenantAttr.NAME: value(tenant.name),
                TenantAttr.TIER: value(tenant.tier),
                TenantAttr.CREATED_AT: value(tenant.created_at),
            }
        )
        if not created:
            raise TenantExists(tenant.tenant_id)

    def set_tier(self, tenant_id: str, tier: str) -> None:
        updated = self._update_existing(
            tenant_item_key(tenant_id),
            "SET #tier = :tier",
            {"#tier": TenantAttr.TIER},
            {":tier": value(tier)},
        )
        if updated is None:
            raise UnknownTenant(tenant_id)

    def add_key(self, key: TenantKey) -> bool:
        """Give a key to a tenant; False if the key already belongs to one (a key never changes tenant)."""
        return self._put_new(
            {
                TenantAttr.ITEM: value(api_key_item_key(key.api_key_id)),
                TenantAttr.API_KEY_ID: value(key.api_key_id),
                TenantAttr.TENANT_ID: value(key.tenant_id),
                TenantAttr.CREATED_AT: value(key.created_at),
            }
        )

    def _put_new(self, item: dict[str, Any]) -> bool:
        """Write an item that must not exist yet; False if it does."""
        try:
            self._db.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(#item)",
                ExpressionAttributeNames={"#item": TenantAttr.ITEM},
            )
        except ClientError as error:
            if _is_condition_failure(error):
                return False
            raise
        return True

    def revoke_key(self, api_key_id: str, now_s: int) -> TenantKey | None:
        """Mark a key revoked (kept, so who held it stays known); None if no tenant has it."""
        item = self._update_existing(
            api_key_item_key(api_key_id),
            "SET #revoked = if_not_exists(#revoked, :now)",
            {"#revoked": TenantAttr.REVOKED_AT},
            {":now": value(now_s)},
        )
        return _key_from_item(item) if item is not None else None

    def _update_existing(
        self, item_key: str, update: str, names: dict[str, str], values: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Update an item that must exist: its attributes after the update, or None if there is none."""
        try:
            return self._db.update_item(
                TableName=self._table,
                Key={TenantAttr.ITEM: value(item_key)},
                UpdateExpression=update,
                ConditionExpression="attribute_exists(#item)",
                ExpressionAttributeNames={"#item": TenantAttr.ITEM, **names},
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except ClientError as error:
            if _is_condition_failure(error):
                return None
            raise

    def keys_of(self, tenant_id: str) -> list[TenantKey]:
        keys: list[TenantKey] = []
        pages = self._db.get_paginator("query").paginate(
            TableName=self._table,
            IndexName=TENANTS_BY_TENANT_INDEX,
            KeyConditionExpression="#tenant = :tenant AND begins_with(#item, :key)",
            ExpressionAttributeNames={"#tenant": TenantAttr.TENANT_ID, "#item": TenantAttr.ITEM},
            ExpressionAttributeValues={":tenant": value(tenant_id), ":key": value(api_key_item_key(""))},
        )
        for page in pages:
            keys.extend(_key_from_item(item) for item in page["Items"])
        return sorted(keys, key=lambda key: key.created_at)

    def tenants(self) -> list[Tenant]:
        """Every tenant: a scan, for the operator's command only, never on a request path."""
        found: list[Tenant] = []
        pages = self._db.get_paginator("scan").paginate(
            TableName=self._table,
            FilterExpression="begins_with(#item, :tenant)",
            ExpressionAttributeNames={"#item": TenantAttr.ITEM},
            ExpressionAttributeValues={":tenant": value(tenant_item_key(""))},
        )
        for page in pages:
            found.extend(_tenant_from_item(item) for item in page["Items"])
        return sorted(found, key=lambda tenant: tenant.tenant_id)
