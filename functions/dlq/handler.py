"""The dead-letter queue's consumer: a job whose message was received ``maxReceiveCount`` times fails.

Partial batch responses: a record that cannot be processed now (DynamoDB unavailable) is reported as
failed and comes back; a record naming no job, a job that does not exist (its submission failed after
the send), or a job already terminal, is done with.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from functions.observability import logger, metrics, publish_metrics, tracer
from shared.aws.clients import AwsClients
from shared.aws.connections import ConnectionStore
from shared.aws.jobs import JobStore
from shared.aws.push import ConnectionPoster
from shared.aws.storage import ArtifactStore
from shared.models import ErrorCode, JobError, QueueMessage
from shared.names import JobMetric
from shared.notify import push_status
from shared.settings import DlqSettings

processor = BatchProcessor(event_type=EventType.SQS)


@dataclass
class DlqDeps:
    settings: DlqSettings
    store: JobStore
    connections: ConnectionStore
    artifacts: ArtifactStore
    poster: ConnectionPoster | None


@lru_cache(maxsize=1)
def _deps() -> DlqDeps:
    settings = DlqSettings()
    clients = AwsClients()
    endpoint = settings.websocket_management_url
    poster = ConnectionPoster(endpoint) if endpoint else None
    return DlqDeps(
        settings,
        JobStore(clients.dynamodb, settings.jobs_table_name),
        ConnectionStore(clients.dynamodb, settings.connections_table_name),
        ArtifactStore(clients.s3, settings.bucket_name),
        poster,
    )


def fail_job(deps: DlqDeps, record: SQSRecord) -> None:
    try:
        job_id = QueueMessage.model_validate_json(record.body).job_id
    except ValidationError:
        logger.error("dead letter with no job in it", extra={"message_id": record.message_id})
        return
    receives = record.attributes.approximate_receive_count
    error = JobError(
        code=ErrorCode.MAX_ATTEMPTS_EXCEEDED,
        message=f"the job was given up after {receives} deliveries without finishing",
        details={"receive_count": int(receives) if receives else None},
    )
    job = deps.store.fail_if_active(job_id, error, int(time.time() * 1000))
    if job is None:
        # No job at all: its message was sent and its put then failed (functions/api/jobs_service.py);
        # the conditional update wrote nothing, and there is nothing to fail.
        found = deps.store.get(job_id) is not None
        logger.info(
            "dead letter for a job already finished" if found else "dead letter for a job that never came",
            extra={"job_id": job_id},
        )
        return
    logger.warning("job failed: max attempts exceeded", extra={"job_id": job_id, "receives": receives})
    metrics.add_metric(name=JobMetric.FAILED, unit=MetricUnit.Count, value=1)
    if deps.poster is not None:
        ttl = deps.settings.output_url_ttl_seconds
        push_status(deps.connections, deps.poster, job, lambda key: deps.artifacts.presign_get(key, ttl))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@publish_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    deps = _deps()
    return process_partial_response(  # type: ignore[return-value]
        event=event,
        record_handler=lambda record: fail_job(deps, record),
        processor=processor,
        context=context,
    )
