"""From the calls counted over a run of reference jobs to units per job and dollars per million jobs.

Pure functions of the counted run (``bench.cost`` counts it) and of ``bench.prices``: the doc
generator (``python -m bench.cost_doc``) and its test render ``docs/cost.md`` from a stored run.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bench.counters import Call
from bench.gateway_meter import Invocation
from bench.prices import ACCESS_LOG_LINE_BYTES, LAMBDA_PLATFORM_LOG_BYTES_AT_INFO, PRICES

CHUNK_64K = 64 * 1024
WS_MESSAGE_UNIT = 32 * 1024
GIB = 1024**3
S3_PUT_CLASS = {"PutObject", "POST", "CopyObject", "ListObjectsV2", "POST bucket", "PUT bucket"}
S3_FREE = {"DeleteObject", "DeleteObjects", "DELETE bucket"}


@dataclass(frozen=True)
class Deployment:
    """What the stack's configuration decides about cost, as the template deploys it."""

    # Lambda memory by the emulator's function name; functions not named get ``default_memory_mb``.
    memory_mb: dict[str, int]
    default_memory_mb: int
    # The X-Ray sampling rule's fixed rate for the REST API; Lambda functions pass its decision through.
    rest_trace_rate: float
    # True when every Lambda invocation is traced on its own (active tracing: 1 a second, then 5 %,
    # which at a million jobs a month, 0.4 a second, is every one).
    lambdas_traced: bool
    # Lambda's START/END/REPORT lines are only written at system log level INFO.
    lambda_platform_logs: bool
    # Bytes of one access log line of each API's stage ("rest", "websocket"), from its format.
    access_log_line_bytes: dict[str, int] = field(default_factory=dict)

    def access_line(self, api: str) -> int:
        return self.access_log_line_bytes.get(api, ACCESS_LOG_LINE_BYTES)

    def memory_of(self, function: str) -> int:
        return self.memory_mb.get(function, self.default_memory_mb)

    def as_dict(self) -> dict[str, Any]:
        return {
            "memory_mb": self.memory_mb,
            "default_memory_mb": self.default_memory_mb,
            "rest_trace_rate": self.rest_trace_rate,
            "lambdas_traced": self.lambdas_traced,
            "lambda_platform_logs": self.lambda_platform_logs,
            "access_log_line_bytes": self.access_log_line_bytes,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Deployment:
        return cls(
            dict(d["memory_mb"]),
            int(d["default_memory_mb"]),
            float(d["rest_trace_rate"]),
            bool(d["lambdas_traced"]),
            bool(d["lambda_platform_logs"]),
            dict(d.get("access_log_line_bytes") or {}),
        )


def _chunks(size: int, unit: int) -> int:
    return max(1, math.ceil(size / unit))


def aws_units(calls: Iterable[Call]) -> dict[str, float]:
    """Billable units of the AWS calls (moto's side), summed."""
    units: dict[str, float] = dict.fromkeys(
        (
            "dynamodb_write_units",
            "dynamodb_index_write_units",
            "dynamodb_read_units",
            "dynamodb_stream_records",
            "dynamodb_stream_reads",
            "sqs_requests",
            "eventbridge_events",
            "s3_put_requests",
            "s3_get_requests",
        ),
        0.0,
    )
    for call in calls:
        if call.service == "dynamodb" and call.units is not None:
            units["dynamodb_write_units"] += call.units.write_units
            units["dynamodb_index_write_units"] += call.units.index_write_units
            units["dynamodb_read_units"] += call.units.read_units
            units["dynamodb_stream_records"] += call.units.stream_records
        elif call.service == "dynamodbstreams":
            units["dynamodb_stream_reads"] += 1
        elif call.service == "sqs":
            units["sqs_requests"] += _chunks(call.payload_bytes, CHUNK_64K)
        elif call.service == "events":
            # Each entry is at least one 64 KB unit; the request's payload bounds the rest.
            units["eventbridge_events"] += max(call.entries, _chunks(call.payload_bytes, CHUNK_64K))
        elif call.service == "s3" and call.operation not in S3_FREE:
            key = "s3_put_requests" if call.operation in S3_PUT_CLASS else "s3_get_requests"
            units[key] += 1
    return units


def gateway_units(
    invocations: Iterable[Invocation],
    rest_requests: int,
    messages_in: Iterable[int],
    posts_out: Iterable[int],
    connection_seconds: Iterable[float],
    deployment: Deployment,
    log_bytes: int = 0,
) -> dict[str, float]:
    invocations = list(invocations)
    messages_in, posts_out = list(messages_in), list(posts_out)
    connections = list(connection_seconds)
    gb_seconds = sum(
        math.ceil(i.duration_ms) / 1000 * deployment.memory_of(i.function) / 1024 for i in invocations
    )
    ws_routes = sum(1 for i in invocations if i.function.startswith("ws-") and i.function != "ws-authorizer")
    traces = rest_requests * deployment.rest_trace_rate
    if deployment.lambdas_traced:
        # Each WebSocket-invoked function starts its own trace; the REST API's function joins the API's.
        traces = rest_requests + sum(1 for i in invocations if i.function != "api")
    return {
        "rest_requests": float(rest_requests),
        "ws_messages": float(sum(_chunks(s, WS_MESSAGE_UNIT) for s in messages_in + posts_out)),
        "ws_connection_minutes": float(sum(math.ceil(s / 60) for s in connections)),
        "lambda_requests": float(len(invocations)),
        "lambda_gb_seconds": gb_seconds,
        "xray_traces": traces,
        "lambda_log_bytes": float(log_bytes),
        "lambda_platform_log_bytes": float(
            LAMBDA_PLATFORM_LOG_BYTES_AT_INFO * len(invocations) if deployment.lambda_platform_logs else 0
        ),
        # API Gateway writes one access log line per REST request and per WebSocket route it runs.
        "access_log_bytes": float(
            deployment.access_line("rest") * rest_requests + deployment.access_line("websocket") * ws_routes
        ),
    }


LOG_PARTS = ("lambda_log_bytes", "lambda_platform_log_bytes", "access_log_bytes", "runner_log_bytes")


def dollars_per_million(units_per_job: dict[str, float]) -> dict[str, float]:
    """USD per million jobs for each priced unit, and ``total``."""
    billed = dict(units_per_job)
    billed["log_gigabytes"] = sum(units_per_job.get(part, 0.0) for part in LOG_PARTS) / GIB
    cost = {name: billed.get(name, 0.0) * price * 1_000_000 for name, (price, _) in PRICES.items()}
    cost["total"] = sum(cost.values())
    return cost


def per_job(totals: dict[str, float], jobs: int) -> dict[str, float]:
    return {name: value / jobs for name, value in totals.items()}
