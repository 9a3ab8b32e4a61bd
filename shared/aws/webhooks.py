"""The webhooks table: endpoints and the job-webhook secret under the tenant, deliveries under the job.

A delivery's attempts are claimed with a conditional write before anything is sent: a duplicate queue
message (SQS delivers at least once, the dispatcher may run a stream batch twice) finds its attempt
taken and sends nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from shared.aws.items import deserialize, serialize, value
from shared.errors import ServiceUnavailable
from shared.names import WebhookAttr
from shared.webhooks.models import (
    Attempt,
    Delivery,
    DeliveryMessage,
    DeliveryStatus,
    Endpoint,
    JobSecret,
    delivery_id,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

ENDPOINT_PREFIX = "endpoint#"
DELIVERY_PREFIX = "delivery#"
JOB_SECRET_ITEM = "job-secret"  # noqa: S105 (an item's name)
# Deliveries are kept as long as the jobs they belong to are readable.
DELIVERY_RETENTION_SECONDS = 90 * 24 * 3600
_FINISHED = [s.value for s in DeliveryStatus if s is not DeliveryStatus.PENDING]


def tenant_scope(owner: str) -> str:
    return f"tenant#{owner}"


def job_scope(job_id: str) -> str:
    return f"job#{job_id}"


def _key(scope: str, item: str) -> dict[str, Any]:
    return {WebhookAttr.SCOPE: value(scope), WebhookAttr.ITEM: value(item)}


def _is_condition_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    plain = deserialize(item)
    plain.pop(WebhookAttr.SCOPE, None)
    plain.pop(WebhookAttr.ITEM, None)
    plain.pop(WebhookAttr.EXPIRES_AT, None)
    return plain


class WebhookStore:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._db = client
        self._table = table

    def _call(self, action: str, operation: str, **kwargs: Any) -> dict[str, Any] | None:
        """One DynamoDB call; None when its condition failed."""
        try:
            return dict(getattr(self._db, operation)(TableName=self._table, **kwargs))
        except ClientError as error:
            if _is_condition_failure(error):
                return None
            code = error.response.get("Error", {}).get("Code", "Unknown")
            raise ServiceUnavailable(f"the webhooks store could not {action} ({code})", cause=code) from error
        except BotoCoreError as error:
            raise ServiceUnavailable(
                f"the webhooks store could not {action}", cause=type(error).__name__
            ) from error

    # -- endpoints ------------------------------------------------------------------------------

    def create_endpoint(self, endpoint: Endpoint) -> None:
        item = {
            WebhookAttr.SCOPE: tenant_scope(endpoint.owner),
            WebhookAttr.ITEM: ENDPOINT_PREFIX + endpoint.endpoint_id,
            **endpoint.model_dump(mode="json", exclude_none=True),
        }
        self._call(
            "create the endpoint",
            "put_item",
            Item=serialize(item),
            ConditionExpression="attribute_not_exists(#s)",
            ExpressionAttributeNames={"#s": WebhookAttr.SCOPE},
        )

    def get_endpoint(self, owner: str, endpoint_id: str) -> Endpoint | None:
        response = self._call(
            "read the endpoint",
            "get_item",
            Key=_key(tenant_scope(owner), ENDPOINT_PREFIX + endpoint_id),
            ConsistentRead=True,
        )
        item = (response or {}).get("Item")
        return Endpoint.model_validate(_plain(item)) if item else None

    def list_endpoints(self, owner: str) -> list[Endpoint]:
        items: list[dict[str, Any]] = []
        start: dict[str, Any] | None = None
        while True:
            kwargs: dict[str, Any] = {"ExclusiveStartKey": start} if start else {}
            response = self._call(
                "list the endpoints",
                "query",
                KeyConditionExpression="#s = :s AND begins_with(#i, :p)",
                ExpressionAttributeNames={"#s": WebhookAttr.SCOPE, "#i": WebhookAttr.ITEM},
                ExpressionAttributeValues={":s": value(tenant_scope(owner)), ":p": value(ENDPOINT_PREFIX)},
                **kwargs,
            )
            assert response is not None
            items += response.get("Items", [])
            start = response.get("LastEvaluatedKey")
            if not start:
                return [Endpoint.model_validate(_plain(item)) for item in items]

    def delete_endpoint(self, owner: str, endpoint_id: str) -> bool:
        response = self._call(
            "delete the endpoint",
            "delete_item",
            Key=_key(tenant_scope(owner), ENDPOINT_PREFIX + endpoint_id),
            ConditionExpression="attribute_exists(#s)",
            ExpressionAttributeNames={"#s": WebhookAttr.SCOPE},
        )
        return response is not None

    def _update_endpoint(
        self, owner: str, endpoint_id: str, update: str, names: dict[str, str], values: dict[str, Any]
    ) -> Endpoint | None:
        response = self._call(
            "update the endpoint",
            "update_item",
            Key=_key(tenant_scope(owner), ENDPOINT_PREFIX + endpoint_id),
            UpdateExpression=update,
            ConditionExpression="attribute_exists(#s)",
            ExpressionAttributeNames={"#s": WebhookAttr.SCOPE, **names},
            # DynamoDB refuses an empty map here (an update that only removes has no values).
            **({"ExpressionAttributeValues": {k: value(v) for k, v in values.items()}} if values else {}),
            ReturnValues="ALL_NEW",
        )
        return Endpoint.model_validate(_plain(response["Attributes"])) if response else None

    def rotate_endpoint_secret(
        self, owner: str, endpoint_id: str, new_secret: str, previous_until_ms: int
    ) -> Endpoint | None:
        return self._update_endpoint(
            owner,
            endpoint_id,
            "SET previous_secret = secret, secret = :new, previous_secret_until = :until",
            {},
            {":new": new_secret, ":until": previous_until_ms},
        )

    def disable_endpoint(self, owner: str, endpoint_id: str, reason: str, now_ms: int) -> Endpoint | None:
        return self._update_endpoint(
            owner,
            endpoint_id,
            "SET disabled_at = :now, disabled_reason = :why",
            {},
            {":now": now_ms, ":why": reason},
        )

    def enable_endpoint(self, owner: str, endpoint_id: str) -> Endpoint | None:
        return self._update_endpoint(owner, endpoint_id, "REMOVE disabled_at, disabled_reason", {}, {})

    def count_failure(self, owner: str, endpoint_id: str) -> None:
        self._update_endpoint(owner, endpoint_id, "ADD failure_count :one", {}, {":one": 1})

    # -- the tenant's job-webhook secret --------------------------------------------------------

    def job_secret(self, owner: str) -> JobSecret | None:
        response = self._call(
            "read the job-webhook secret",
            "get_item",
            Key=_key(tenant_scope(owner), JOB_SECRET_ITEM),
            ConsistentRead=True,
        )
        item = (response or {}).get("Item")
        return JobSecret.model_validate(_plain(item)) if item else None

    def ensure_job_secret(self, owner: str, candidate: JobSecret) -> JobSecret:
        """The tenant's secret, made from ``candidate`` if it has none yet (the first writer wins)."""
        item = {
            WebhookAttr.SCOPE: tenant_scope(owner),
            WebhookAttr.ITEM: JOB_SECRET_ITEM,
            **candidate.model_dump(mode="json", exclude_none=True),
        }
        created = self._call(
            "create the job-webhook secret",
            "put_item",
            Item=serialize(item),
            ConditionExpression="attribute_not_exists(#s)",
            ExpressionAttributeNames={"#s": WebhookAttr.SCOPE},
        )
        if created is not None:
            return candidate
        existing = self.job_secret(owner)
        assert existing is not None
        return existing

    def rotate_job_secret(
        self, owner: str, new_secret: str, previous_until_ms: int, now_ms: int
    ) -> JobSecret:
        response = self._call(
            "rotate the job-webhook secret",
            "update_item",
            Key=_key(tenant_scope(owner), JOB_SECRET_ITEM),
            # A tenant that never had one gets it now: there is no previous secret to keep.
            UpdateExpression="SET previous_secret = if_not_exists(secret, :new), secret = :new, "
            "previous_secret_until = :until, created_at = if_not_exists(created_at, :now)",
            ExpressionAttributeValues={
                ":new": value(new_secret),
                ":until": value(previous_until_ms),
                ":now": value(now_ms),
            },
            ReturnValues="ALL_NEW",
        )
        assert response is not None
        return JobSecret.model_validate(_plain(response["Attributes"]))

    # -- deliveries -----------------------------------------------------------------------------

    def claim_attempt(self, message: DeliveryMessage, event_id: str, url: str, now_ms: int) -> bool:
        """Take attempt ``message.attempt``; False when it was taken already (a duplicate message)."""
        condition = (
            "(attribute_not_exists(#s) AND :n = :one) OR (attempts_made = :prev AND #status = :pending)"
        )
        response = self._call(
            "claim a delivery attempt",
            "update_item",
            Key=_key(job_scope(message.job_id), DELIVERY_PREFIX + delivery_id(message.event, message.target)),
            UpdateExpression="SET attempts_made = :n, #status = :pending, delivery_id = :id, job_id = :job, "
            "#owner = :owner, event = :event, event_id = :eid, target = :target, #url = :url, "
            "created_at = if_not_exists(created_at, :now), updated_at = :now, expires_at = :expires",
            ConditionExpression=condition,
            ExpressionAttributeNames={
                "#s": WebhookAttr.SCOPE,
                "#status": "status",
                "#owner": "owner",
                "#url": "url",
            },
            ExpressionAttributeValues={
                ":n": value(message.attempt),
                ":one": value(1),
                ":prev": value(message.attempt - 1),
                ":pending": value(DeliveryStatus.PENDING.value),
                ":id": value(delivery_id(message.event, message.target)),
                ":job": value(message.job_id),
                ":owner": value(message.owner),
                ":event": value(message.event),
                ":eid": value(event_id),
                ":target": value(message.target),
                ":url": value(url),
                ":now": value(now_ms),
                ":expires": value(now_ms // 1000 + DELIVERY_RETENTION_SECONDS),
            },
        )
        return response is not None

    def record_attempt(
        self, job_id: str, delivery: str, attempt: Attempt, status: DeliveryStatus, now_ms: int
    ) -> None:
        """The attempt's outcome, appended; only while the attempt is still the latest one claimed."""
        self._call(
            "record a delivery attempt",
            "update_item",
            Key=_key(job_scope(job_id), DELIVERY_PREFIX + delivery),
            UpdateExpression="SET attempts = list_append(if_not_exists(attempts, :empty), :one), "
            "#status = :status, updated_at = :now",
            ConditionExpression="attempts_made = :n",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":empty": {"L": []},
                ":one": {"L": [value(attempt.model_dump(mode="json", exclude_none=True))]},
                ":status": value(status.value),
                ":now": value(now_ms),
                ":n": value(attempt.attempt),
            },
        )

    def cancel_delivery(self, job_id: str, delivery: str, attempt: int, now_ms: int) -> None:
        self._call(
            "cancel a delivery",
            "update_item",
            Key=_key(job_scope(job_id), DELIVERY_PREFIX + delivery),
            UpdateExpression="SET #status = :canceled, updated_at = :now",
            ConditionExpression="attempts_made = :n",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":canceled": value(DeliveryStatus.CANCELED.value),
                ":now": value(now_ms),
                ":n": value(attempt),
            },
        )

    def list_deliveries(self, job_id: str) -> list[Delivery]:
        response = self._call(
            "list the deliveries",
            "query",
            KeyConditionExpression="#s = :s AND begins_with(#i, :p)",
            ExpressionAttributeNames={"#s": WebhookAttr.SCOPE, "#i": WebhookAttr.ITEM},
            ExpressionAttributeValues={":s": value(job_scope(job_id)), ":p": value(DELIVERY_PREFIX)},
            ConsistentRead=True,
        )
        assert response is not None
        return [Delivery.model_validate(_plain(item)) for item in response.get("Items", [])]

    def reopen(self, job_id: str, delivery: str, now_ms: int) -> Delivery | None:
        """A finished delivery back to pending, for a redelivery; None if there is none or it is pending."""
        response = self._call(
            "reopen a delivery",
            "update_item",
            Key=_key(job_scope(job_id), DELIVERY_PREFIX + delivery),
            UpdateExpression="SET #status = :pending, updated_at = :now",
            ConditionExpression="#status IN (" + ", ".join(f":f{i}" for i in range(len(_FINISHED))) + ")",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":pending": value(DeliveryStatus.PENDING.value),
                ":now": value(now_ms),
                **{f":f{i}": value(status) for i, status in enumerate(_FINISHED)},
            },
            ReturnValues="ALL_NEW",
        )
        return Delivery.model_validate(_plain(response["Attributes"])) if response else None
