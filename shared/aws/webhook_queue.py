"""The webhook attempts queue (SQS delays are the backoff) and its dead-letter queue; and the event bus."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from shared.errors import ServiceUnavailable
from shared.names import EVENT_SOURCE
from shared.webhooks.models import DeliveryMessage

# SQS delays a message at most this long; a longer wait is made of several hops.
MAX_SQS_DELAY_SECONDS = 900
_BATCH = 10


class AttemptQueue:
    def __init__(self, client: Any, queue_url: str, dead_letter_url: str = "") -> None:
        self._sqs = client
        self._url = queue_url
        self._dlq = dead_letter_url

    def send(self, messages: Sequence[DeliveryMessage], delay_seconds: float = 0) -> None:
        """Each message, due after ``delay_seconds``: one SQS hop at most (``DeliveryMessage.not_before``)."""
        delay = min(max(int(delay_seconds + 0.999), 0), MAX_SQS_DELAY_SECONDS)
        for start in range(0, len(messages), _BATCH):
            batch = messages[start : start + _BATCH]
            entries = [
                {"Id": str(i), "MessageBody": m.model_dump_json(exclude_none=True), "DelaySeconds": delay}
                for i, m in enumerate(batch)
            ]
            try:
                response = self._sqs.send_message_batch(QueueUrl=self._url, Entries=entries)
            except (ClientError, BotoCoreError) as error:
                raise ServiceUnavailable(
                    "the webhook queue did not take the attempt", cause=str(error)
                ) from error
            if response.get("Failed"):
                raise ServiceUnavailable(
                    "the webhook queue refused an attempt", cause=str(response["Failed"])
                )

    def dead_letter(self, message: DeliveryMessage, reason: str) -> None:
        body = json.dumps({**message.model_dump(mode="json", exclude_none=True), "reason": reason})
        try:
            self._sqs.send_message(QueueUrl=self._dlq, MessageBody=body)
        except (ClientError, BotoCoreError) as error:
            raise ServiceUnavailable(
                "the webhook dead-letter queue did not take the event", cause=str(error)
            ) from error


class EventBus:
    """PutEvents, ten entries a call (the API's limit)."""

    def __init__(self, client: Any, bus_name: str) -> None:
        self._events = client
        self._bus = bus_name

    def put(self, events: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """``(detail_type, detail)`` pairs; raises when any entry was not taken, so the batch is retried."""
        for start in range(0, len(events), _BATCH):
            entries = [
                {
                    "Source": EVENT_SOURCE,
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail, separators=(",", ":")),
                    "EventBusName": self._bus,
                }
                for detail_type, detail in events[start : start + _BATCH]
            ]
            try:
                response = self._events.put_events(Entries=entries)
            except (ClientError, BotoCoreError) as error:
                raise ServiceUnavailable("the event bus did not take the events", cause=str(error)) from error
            if response.get("FailedEntryCount"):
                failed = [e for e in response.get("Entries", []) if e.get("ErrorCode")]
                raise ServiceUnavailable("the event bus refused events", cause=str(failed[:3]))
