"""The price table the cost model multiplies the counted calls by: the only place a price is written.

On-demand list prices in us-east-1, first pricing tier, in USD per unit; check the AWS pricing pages
for your region and tier. A change here changes ``docs/cost.md`` when it is next generated, and the
test that renders the doc from the committed run fails until it is.
"""

from __future__ import annotations

MILLION = 1_000_000

# name -> (USD per unit, unit, what the unit is)
PRICES: dict[str, tuple[float, str]] = {
    "rest_requests": (3.50 / MILLION, "API Gateway REST request"),
    # Messages both ways, each in 32 KB units; connection time by the minute.
    "ws_messages": (1.00 / MILLION, "API Gateway WebSocket message (32 KB unit)"),
    "ws_connection_minutes": (0.25 / MILLION, "API Gateway WebSocket connection minute"),
    "lambda_requests": (0.20 / MILLION, "Lambda request"),
    "lambda_gb_seconds": (0.0000133334, "Lambda GB-second (arm64)"),
    "dynamodb_write_units": (0.625 / MILLION, "DynamoDB on-demand write request unit (table)"),
    "dynamodb_index_write_units": (0.625 / MILLION, "DynamoDB on-demand write request unit (index)"),
    "dynamodb_read_units": (0.125 / MILLION, "DynamoDB on-demand read request unit"),
    # A stream record costs nothing to write; GetRecords is billed per call, except those a Lambda
    # trigger makes (free), which is how the stack reads its streams.
    "dynamodb_stream_records": (0.0, "DynamoDB Streams record (read by a Lambda trigger: free)"),
    "dynamodb_stream_reads": (0.20 / MILLION, "DynamoDB Streams GetRecords call outside a trigger"),
    "sqs_requests": (0.40 / MILLION, "SQS standard request (64 KB unit)"),
    "eventbridge_events": (1.00 / MILLION, "EventBridge custom event (64 KB unit)"),
    "s3_put_requests": (0.005 / 1000, "S3 PUT, COPY, POST or LIST request"),
    "s3_get_requests": (0.0004 / 1000, "S3 GET, HEAD or other read request"),
    "xray_traces": (5.00 / MILLION, "X-Ray trace recorded"),
    "log_gigabytes": (0.50, "CloudWatch Logs GB ingested (standard class)"),
}

# What the counters cannot see locally, each a documented estimate rather than a price:
# Lambda's own START, END and REPORT lines per invocation when its system log level is INFO
# (about 75, 55 and 230 bytes); none at WARN.
LAMBDA_PLATFORM_LOG_BYTES_AT_INFO = 360
# One API Gateway access log line when the stage's format is not known (a run counted before the
# formats were read from the template, ``bench.access_log``): the JSON line it had then, about this long.
ACCESS_LOG_LINE_BYTES = 330
