"""An SQS event source mapping, as Lambda runs it: poll, invoke, delete what succeeded (the DLQ
function's and the webhook delivery function's)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from local.lambda_context import LocalLambdaContext
from shared.aws.clients import AwsClients

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda's SQS poller builds from ReceiveMessage's answer."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


class SqsEventSource:
    def __init__(
        self,
        clients: AwsClients,
        queue_url: str,
        handler: Handler,
        region: str,
        name: str = "dlq",
        batch_size: int = 10,
    ) -> None:
        self._batch_size = batch_size
        self._sqs = clients.sqs
        self._url = queue_url
        self._handler = handler
        self._region = region
        self._arn = self._sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self._stopping = threading.Event()
        self._name = name
        self._thread = threading.Thread(target=self._poll, name=f"{name}-event-source", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(5)

    def poll_once(self, wait_seconds: int = 1) -> int:
        messages = self._sqs.receive_message(
            QueueUrl=self._url,
            MaxNumberOfMessages=self._batch_size,
            WaitTimeSeconds=wait_seconds,
            MessageSystemAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0
        result = self._handler(
            sqs_event(messages, self._arn, self._region), LocalLambdaContext(self._name, 30_000)
        )
        failed = {item["itemIdentifier"] for item in result.get("batchItemFailures", [])}
        for message in messages:
            if message["MessageId"] not in failed:
                self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"])
        return len(messages)

    def _poll(self) -> None:
        while not self._stopping.is_set():
            try:
                self.poll_once()
            except Exception as error:  # the poller outlives a failed invocation, as Lambda's does
                print(f"{self._name} event source: {error}", flush=True)
                self._stopping.wait(1)
