"""The connections table: one item per WebSocket subscription, keyed by job, then connection.

The fan-out reads a job's subscribers with one Query on the job's partition (eventually consistent: a
subscription written a moment ago may be missed for a moment), never a Scan and no index. Nothing is
written at ``$connect`` (the authorizer hands the owner to every route) and nothing is deleted at
``$disconnect``: a subscription lives as long as a connection can (its TTL), ``unsubscribe`` deletes it,
and a post that answers 410 Gone deletes that one subscription.

A job's partition may also hold its cancel mark (sort key ``CANCEL_MARK``, never a connection id: API
Gateway's ids have no ``$``), put by the API just before it asks a running job to stop. The runner's
lookups see it at no extra read and confirm the cancel on the job itself (gpu_runner/cancel_watch.py);
nothing else ever takes it for a subscriber.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from shared.aws.items import deserialize, serialize, value
from shared.errors import ServiceUnavailable
from shared.names import ConnectionAttr
from shared.progress_rate import DEFAULT_PROGRESS_RATE

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


# The cancel mark's sort key: "$" is in no API Gateway connection id, and no client names its own.
CANCEL_MARK = "$cancel"
# A cancel is heard within seconds while the job runs; the mark only has to outlive its attempt.
CANCEL_MARK_TTL_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Subscription:
    connection_id: str
    # Asked for live preview images (subscribe with previews: true); others are never sent one.
    previews: bool = False
    # job.progress frames a second this subscriber asked for (shared.progress_rate)
    progress_rate: float = DEFAULT_PROGRESS_RATE


@dataclass(frozen=True)
class Lookup:
    """One read of a job's partition: its subscriptions, and whether its cancel mark is there."""

    subscriptions: list[Subscription]
    cancel_marked: bool = False


class ConnectionStore:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._db = client
        self._table = table

    def subscribe(
        self,
        connection_id: str,
        job_id: str,
        expires_at: int,
        *,
        previews: bool = False,
        progress_rate: float = DEFAULT_PROGRESS_RATE,
    ) -> None:
        """One PutItem: subscribing again (a new rate, previews) replaces the item."""
        item = {
            ConnectionAttr.JOB: job_id,
            ConnectionAttr.CONNECTION_ID: connection_id,
            ConnectionAttr.EXPIRES_AT: expires_at,
            # Only when asked: an item without it costs nothing more to write or read.
            ConnectionAttr.PREVIEWS: True if previews else None,
            ConnectionAttr.PROGRESS_RATE: progress_rate,
        }
        try:
            self._db.put_item(TableName=self._table, Item=serialize(item))
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "Unknown")
            raise ServiceUnavailable(f"the connections table did not accept the write ({code})") from error

    def unsubscribe(self, connection_id: str, job_id: str) -> None:
        """Deletes the one subscription (``unsubscribe``, or a post that answered 410 Gone)."""
        self._db.delete_item(
            TableName=self._table,
            Key={ConnectionAttr.JOB: value(job_id), ConnectionAttr.CONNECTION_ID: value(connection_id)},
        )

    def mark_cancel(self, job_id: str, expires_at: int) -> None:
        """Puts the job's cancel mark (before the cancel itself is written: a mark without a cancel only
        makes the runner read the job, a cancel without a mark could go unheard while frames flow)."""
        item = {
            ConnectionAttr.JOB: job_id,
            ConnectionAttr.CONNECTION_ID: CANCEL_MARK,
            ConnectionAttr.EXPIRES_AT: expires_at,
        }
        try:
            self._db.put_item(TableName=self._table, Item=serialize(item))
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "Unknown")
            message = f"the connections table did not accept the cancel mark ({code})"
            raise ServiceUnavailable(message) from error

    def clear_cancel_mark(self, job_id: str) -> None:
        """Deletes the mark of a cancel that was not written (the job had moved on)."""
        self.unsubscribe(CANCEL_MARK, job_id)

    def subscribers(self, job_id: str) -> list[str]:
        """Connection ids subscribed to the job."""
        return [s.connection_id for s in self.subscriptions(job_id)]

    def subscriptions(self, job_id: str) -> list[Subscription]:
        """The job's subscriptions with what each asked for: one eventually consistent Query a page."""
        return self.lookup(job_id).subscriptions

    def lookup(self, job_id: str) -> Lookup:
        """The job's subscriptions, and whether its cancel mark was seen, in the same Query."""
        found: list[Subscription] = []
        marked = False
        kwargs = {
            "TableName": self._table,
            "KeyConditionExpression": "#j = :j",
            "ProjectionExpression": "#c, #p, #r",
            "ExpressionAttributeNames": {
                "#j": ConnectionAttr.JOB,
                "#c": ConnectionAttr.CONNECTION_ID,
                "#p": ConnectionAttr.PREVIEWS,
                "#r": ConnectionAttr.PROGRESS_RATE,
            },
            "ExpressionAttributeValues": {":j": value(job_id)},
        }
        while True:
            response = self._db.query(**kwargs)
            for item in response.get("Items", []):
                plain = deserialize(item)
                if plain[ConnectionAttr.CONNECTION_ID] == CANCEL_MARK:
                    marked = True
                    continue
                found.append(
                    Subscription(
                        str(plain[ConnectionAttr.CONNECTION_ID]),
                        bool(plain.get(ConnectionAttr.PREVIEWS)),
                        float(plain.get(ConnectionAttr.PROGRESS_RATE, DEFAULT_PROGRESS_RATE)),
                    )
                )
            last = response.get("LastEvaluatedKey")
            if not last:
                return Lookup(found, marked)
            kwargs["ExclusiveStartKey"] = last
