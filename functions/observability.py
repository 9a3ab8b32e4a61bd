"""Powertools Logger, Tracer and Metrics, one of each per process, shared by every function."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from shared.names import METRICS_NAMESPACE, SERVICE_NAME

# What each function's own log group already says (which function it is, its ARN and memory): about
# 200 bytes a line in AWS, where every byte is billed as logs.
IMPLIED_KEYS = ("function_name", "function_arn", "function_memory_size")
TRACE_HEADER = "_X_AMZN_TRACE_ID"


class CompactFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON lines without what the log group implies; the request id stays (a request's
    lines), and the trace id only when X-Ray sampled the request (an unsampled id leads nowhere)."""

    def serialize(self, log: Any) -> str:
        for key in IMPLIED_KEYS:
            log.pop(key, None)
        if "Sampled=1" not in os.environ.get(TRACE_HEADER, ""):
            log.pop("xray_trace_id", None)
        return super().serialize(log)


logger = Logger(service=SERVICE_NAME, logger_formatter=CompactFormatter())
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
