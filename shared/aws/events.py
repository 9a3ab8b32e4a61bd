"""The job events table: one small item per event a late reader may replay (see shared/events.py)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from shared.aws.items import deserialize, value
from shared.errors import ServiceUnavailable
from shared.events import MAX_ENTRY_BYTES, MAX_REPLAY
from shared.names import EventAttr

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class EntryTooLarge(ValueError):
    pass


class EventLog:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._db = client
        self._table = table

    def append(self, job_id: str, event: dict[str, Any], expires_at: int) -> None:
        """Keeps one event (a frame with its ``seq``) until ``expires_at`` (epoch seconds), with the job.
        One write unit each: an entry over ``MAX_ENTRY_BYTES`` is refused rather than stored."""
        body = json.dumps(event, separators=(",", ":"), default=str)
        if len(body) > MAX_ENTRY_BYTES:
            raise EntryTooLarge(f"an event of {len(body)} bytes is over the log's {MAX_ENTRY_BYTES}")
        try:
            self._db.put_item(
                TableName=self._table,
                Item={
                    EventAttr.JOB: value(job_id),
                    EventAttr.SEQ: value(int(event["seq"])),
                    EventAttr.BODY: value(body),
                    EventAttr.EXPIRES_AT: value(expires_at),
                },
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "Unknown")
            raise ServiceUnavailable(f"the job events table did not accept the write ({code})") from error

    def after(self, job_id: str, seq: int, limit: int = MAX_REPLAY) -> list[dict[str, Any]]:
        """The job's logged events numbered above ``seq``, oldest first (one strongly consistent Query)."""
        try:
            response = self._db.query(
                TableName=self._table,
                KeyConditionExpression="#j = :j AND #s > :s",
                ExpressionAttributeNames={"#j": EventAttr.JOB, "#s": EventAttr.SEQ},
                ExpressionAttributeValues={":j": value(job_id), ":s": value(seq)},
                ConsistentRead=True,
                Limit=limit,
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "Unknown")
            raise ServiceUnavailable(f"the job events table could not be read ({code})") from error
        return [json.loads(deserialize(item)[EventAttr.BODY]) for item in response.get("Items", [])]

    def latest(self, job_id: str) -> int | None:
        """The number of the job's newest logged event (keys only: half a read unit)."""
        try:
            response = self._db.query(
                TableName=self._table,
                KeyConditionExpression="#j = :j",
                ExpressionAttributeNames={"#j": EventAttr.JOB, "#s": EventAttr.SEQ},
                ExpressionAttributeValues={":j": value(job_id)},
                ProjectionExpression="#s",
                ScanIndexForward=False,
                Limit=1,
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "Unknown")
            raise ServiceUnavailable(f"the job events table could not be read ({code})") from error
        items = response.get("Items", [])
        return int(deserialize(items[0])[EventAttr.SEQ]) if items else None
