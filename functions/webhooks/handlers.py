"""The two Lambda entry points of the webhook path: the stream's dispatcher and the attempts' worker."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from functions.observability import logger, publish_metrics, tracer
from functions.webhooks.deliver import DeliverDeps, deliver
from functions.webhooks.dispatch import DispatchDeps, dispatch
from shared.aws.clients import AwsClients
from shared.aws.jobs import JobStore
from shared.aws.storage import ArtifactStore
from shared.aws.webhook_queue import AttemptQueue, EventBus
from shared.aws.webhooks import WebhookStore
from shared.settings import WebhookSettings
from shared.webhooks.backoff import RetryPolicy
from shared.webhooks.models import DeliveryMessage

processor = BatchProcessor(event_type=EventType.SQS)


@lru_cache(maxsize=1)
def _settings() -> WebhookSettings:
    return WebhookSettings()


def _presigner(clients: AwsClients, settings: WebhookSettings) -> Callable[[str], str]:
    artifacts = ArtifactStore(clients.s3, settings.bucket_name)
    return lambda key: artifacts.presign_get(key, settings.output_url_ttl_seconds)


# Each function's clients are its own (made with its role's credentials), even where one process hosts
# both, as the local stack does.
@lru_cache(maxsize=1)
def dispatch_deps() -> DispatchDeps:
    settings, clients = _settings(), AwsClients()
    return DispatchDeps(
        webhooks=WebhookStore(clients.dynamodb, settings.webhooks_table_name),
        attempts=AttemptQueue(clients.sqs, settings.webhook_queue_url),
        bus=EventBus(clients.events, settings.event_bus_name) if settings.event_bus_name else None,
        presign=_presigner(clients, settings),
    )


@lru_cache(maxsize=1)
def deliver_deps() -> DeliverDeps:
    settings, clients = _settings(), AwsClients()
    return DeliverDeps(
        jobs=JobStore(clients.dynamodb, settings.jobs_table_name),
        webhooks=WebhookStore(clients.dynamodb, settings.webhooks_table_name),
        attempts=AttemptQueue(clients.sqs, settings.webhook_queue_url, settings.webhook_dlq_url),
        presign=_presigner(clients, settings),
        policy=RetryPolicy(
            settings.webhook_retry_base_seconds,
            settings.webhook_retry_max_delay_seconds,
            settings.webhook_retry_window_seconds,
        ),
        timeout_seconds=settings.webhook_timeout_seconds,
        max_response_bytes=settings.webhook_max_response_bytes,
        allow_local_http=settings.webhook_allow_local_http,
    )


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@publish_metrics
def dispatch_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """The jobs table's stream, filtered to status transitions. A failed batch is retried from its first
    record (ReportBatchItemFailures): publishing is all or nothing per batch."""
    records = event.get("Records", [])
    try:
        dispatch(dispatch_deps(), records)
    except Exception:
        logger.exception("dispatching job events failed; the batch will be retried")
        first = records[0]["dynamodb"]["SequenceNumber"] if records else ""
        return {"batchItemFailures": [{"itemIdentifier": first}]}
    return {"batchItemFailures": []}


def _deliver_record(record: SQSRecord) -> None:
    try:
        message = DeliveryMessage.model_validate_json(record.body)
    except ValidationError:
        logger.error("webhook attempt message is malformed", extra={"message_id": record.message_id})
        return
    deliver(deliver_deps(), message)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@publish_metrics
def deliver_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """The attempts queue: a record whose handling raised comes back after its visibility timeout."""
    return process_partial_response(  # type: ignore[return-value]
        event=event, record_handler=_deliver_record, processor=processor, context=context
    )
