"""The connections table: one item per job a WebSocket connection subscribes to (``$connect`` writes
nothing: the authorizer hands the owner to every route).

Items of a connection share its id as partition key (so ``$disconnect`` removes them with one Query);
subscription items carry ``job_id`` for the ``by-job`` index the fan-out queries, never a Scan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from shared.aws.items import deserialize, serialize, value
from shared.errors import ServiceUnavailable
from shared.names import CONNECTIONS_BY_JOB_INDEX, ConnectionAttr
from shared.progress_rate import DEFAULT_PROGRESS_RATE

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

CONNECTION_ITEM = "connection"
SUBSCRIPTION_PREFIX = "sub#"


@dataclass(frozen=True)
class Subscription:
    connection_id: str
    # Asked for live preview images (subscribe with previews: true); others are never sent one.
    previews: bool = False
    # job.progress frames a second this subscriber asked for (shared.progress_rate)
    progress_rate: float = DEFAULT_PROGRESS_RATE


class ConnectionStore:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._db = client
        self._table = table

    def add_connection(self, connection_id: str, owner: str, expires_at: int) -> None:
        self._put(
            {
                ConnectionAttr.CONNECTION_ID: connection_id,
                ConnectionAttr.SUBSCRIPTION: CONNECTION_ITEM,
                ConnectionAttr.OWNER: owner,
                ConnectionAttr.EXPIRES_AT: expires_at,
            }
        )

    def subscribe(
        self,
        connection_id: str,
        job_id: str,
        owner: str,
        expires_at: int,
        *,
        previews: bool = False,
        progress_rate: float = DEFAULT_PROGRESS_RATE,
    ) -> None:
        self._put(
            {
                ConnectionAttr.CONNECTION_ID: connection_id,
                ConnectionAttr.SUBSCRIPTION: SUBSCRIPTION_PREFIX + job_id,
                ConnectionAttr.JOB_ID: job_id,
                ConnectionAttr.OWNER: owner,
                ConnectionAttr.EXPIRES_AT: expires_at,
                # Only when asked: an item without it costs nothing more to write or read.
                ConnectionAttr.PREVIEWS: True if previews else None,
                ConnectionAttr.PROGRESS_RATE: progress_rate,
            }
        )

    def unsubscribe(self, connection_id: str, job_id: str) -> None:
        self._db.delete_item(
            TableName=self._table,
            Key={
                ConnectionAttr.CONNECTION_ID: value(connection_id),
                ConnectionAttr.SUBSCRIPTION: value(SUBSCRIPTION_PREFIX + job_id),
            },
        )

    def remove_connection(self, connection_id: str) -> int:
        """Deletes the connection and all its subscriptions; returns how many items went."""
        response = self._db.query(
            TableName=self._table,
            KeyConditionExpression="#c = :c",
            ExpressionAttributeNames={"#c": ConnectionAttr.CONNECTION_ID, "#s": ConnectionAttr.SUBSCRIPTION},
            ExpressionAttributeValues={":c": value(connection_id)},
            ProjectionExpression="#c, #s",
        )
        keys = response.get("Items", [])
        for start in range(0, len(keys), 25):
            batch = [{"DeleteRequest": {"Key": key}} for key in keys[start : start + 25]]
            self._db.batch_write_item(RequestItems={self._table: batch})
        return len(keys)

    def subscribers(self, job_id: str) -> list[str]:
        """Connection ids subscribed to the job, by the ``by-job`` index."""
        return [s.connection_id for s in self.subscriptions(job_id)]

    def subscriptions(self, job_id: str) -> list[Subscription]:
        """The job's subscriptions, by the ``by-job`` index, with what each asked for (the index projects
        that and nothing more)."""
        found: list[Subscription] = []
        kwargs = {
            "TableName": self._table,
            "IndexName": CONNECTIONS_BY_JOB_INDEX,
            "KeyConditionExpression": "#j = :j",
            "ExpressionAttributeNames": {"#j": ConnectionAttr.JOB_ID},
            "ExpressionAttributeValues": {":j": value(job_id)},
        }
        while True:
            response = self._db.query(**kwargs)
            for item in response.get("Items", []):
                plain = deserialize(item)
                found.append(
                    Subscription(
                        str(plain[ConnectionAttr.CONNECTION_ID]),
                        bool(plain.get(ConnectionAttr.PREVIEWS)),
                        float(plain.get(ConnectionAttr.PROGRESS_RATE, DEFAULT_PROGRESS_RATE)),
                    )
                )
            last = response.get("LastEvaluatedKey")
            if not last:
                return found
            kwargs["ExclusiveStartKey"] = last

    def _put(self, plain: dict[str, object]) -> None:
        try:
            self._db.put_item(TableName=self._table, Item=serialize(plain))
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "Unknown")
            raise ServiceUnavailable(f"the connections table did not accept the write ({code})") from error
