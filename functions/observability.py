"""Powertools Logger, Tracer and Metrics, one of each per process, shared by every function."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer

from shared.names import METRICS_NAMESPACE, SERVICE_NAME

logger = Logger(service=SERVICE_NAME)
# Only the AWS SDK is traced: Tracer's default patches every library X-Ray supports that is installed,
# importing each one (aiohttp, httpx, ...) into every cold start whether a request uses it or not.
TRACED_MODULES = ("botocore",)
tracer = Tracer(service=SERVICE_NAME, patch_modules=TRACED_MODULES)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)


def publish_metrics(handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """``metrics.log_metrics`` without its warning on every invocation that emitted no metric.

    Most requests (reads, listings, health) emit none; flushing an empty set only logs "No application
    metrics to publish", so the set is flushed when it holds something.
    """

    @functools.wraps(handler)
    def publishing(event: Any, context: Any) -> Any:
        try:
            return handler(event, context)
        finally:
            if metrics.metric_set:
                metrics.flush_metrics()

    return publishing
