"""Scheduled every minute: re-sends messages for jobs whose enqueue did not complete."""

from __future__ import annotations

import time
from dataclasses import asdict
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.observability import logger, metrics, publish_metrics, tracer
from functions.sweeper.sweep import resend_pending
from shared.aws.clients import AwsClients
from shared.aws.jobs import JobStore
from shared.aws.pool_queues import PoolQueues
from shared.pools import PoolDirectory
from shared.settings import SweeperSettings


@lru_cache(maxsize=1)
def _deps() -> tuple[SweeperSettings, JobStore, PoolQueues]:
    settings = SweeperSettings()
    clients = AwsClients()
    store = JobStore(clients.dynamodb, settings.jobs_table_name, settings.idempotency_table_name)
    pools = PoolDirectory.from_settings(
        settings.pool_routes, settings.jobs_queue_url, settings.priority_queue_url
    )
    return settings, store, PoolQueues(clients.sqs, pools)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@publish_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    settings, store, queue = _deps()
    result = resend_pending(store, queue, int(time.time() * 1000), settings.enqueue_grace_seconds)
    metrics.add_metric(name="JobsReEnqueued", unit=MetricUnit.Count, value=result.resent)
    return asdict(result)
