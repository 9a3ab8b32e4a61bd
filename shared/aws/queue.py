"""The jobs queue: a message only points at a job; the job lives in DynamoDB."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from shared.errors import ServiceUnavailable
from shared.models import Job, QueueMessage

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


@dataclass(frozen=True)
class ReceivedMessage:
    message_id: str
    receipt_handle: str
    body: str
    receive_count: int
    # When SQS accepted the message (epoch ms; None when SQS did not say): how long its job may still
    # be on its way (gpu_runner/orphans.py).
    sent_at_ms: int | None = None

    def parse(self) -> QueueMessage:
        """The message's job reference; raises ``pydantic.ValidationError`` for a malformed body."""
        return QueueMessage.model_validate_json(self.body)


class JobQueue:
    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._sqs = client
        self._url = queue_url

    @property
    def url(self) -> str:
        return self._url

    def send(self, job_id: str, group_id: str | None = None) -> None:
        """``group_id``: the job's tenant. On a standard queue it makes SQS a fair queue: a tenant with a
        large backlog does not hold back another tenant's jobs (in-flight messages balanced by group)."""
        body = QueueMessage(job_id=job_id).model_dump_json()
        group = {"MessageGroupId": group_id} if group_id else {}
        try:
            self._sqs.send_message(QueueUrl=self._url, MessageBody=body, **group)
        except (ClientError, BotoCoreError) as error:
            raise ServiceUnavailable(
                "the job queue did not accept the job", cause=type(error).__name__
            ) from error

    def send_job(self, job: Job) -> None:
        self.send(job.job_id, group_id=job.owner)

    def receive(self, max_messages: int, wait_seconds: int, visibility_seconds: int) -> list[ReceivedMessage]:
        response = self._sqs.receive_message(
            QueueUrl=self._url,
            MaxNumberOfMessages=max_messages,
            WaitTimeSeconds=wait_seconds,
            VisibilityTimeout=visibility_seconds,
            MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
        )
        return [
            ReceivedMessage(
                message_id=m["MessageId"],
                receipt_handle=m["ReceiptHandle"],
                body=m["Body"],
                receive_count=int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1")),
                sent_at_ms=_int_or_none(m.get("Attributes", {}).get("SentTimestamp")),
            )
            for m in response.get("Messages", [])
        ]

    def delete(self, receipt_handle: str) -> None:
        self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=receipt_handle)

    def change_visibility(self, receipt_handle: str, seconds: int) -> None:
        self._sqs.change_message_visibility(
            QueueUrl=self._url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
        )


def _int_or_none(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None
