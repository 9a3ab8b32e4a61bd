"""Creates every table, queue and bucket of the service from ``shared.names``, for moto or LocalStack."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.aws.clients import AwsClients
from shared.names import (
    ALL_TABLES,
    BUCKET_NAME,
    EVENT_BUS_NAME,
    WEBHOOK_DLQ_NAME,
    WEBHOOK_QUEUE_NAME,
    TableSpec,
    pool_queue_name,
)
from shared.pools import DEFAULT_POOL, PRIORITY_LANE, STANDARD_LANE


@dataclass(frozen=True)
class LocalResources:
    jobs_table: str
    connections_table: str
    tenants_table: str
    queue_url: str
    dlq_url: str
    bucket: str
    # pool -> lane ("standard", "priority", "dlq") -> queue URL, the default pool's included.
    pool_queues: dict[str, dict[str, str]] = field(default_factory=dict)
    job_events_table: str = ""
    webhooks_table: str = ""
    webhook_queue_url: str = ""
    webhook_dlq_url: str = ""
    event_bus: str = ""


def _create_table(clients: AwsClients, spec: TableSpec, name: str) -> None:
    types = dict(spec.key_types)
    schema = [{"AttributeName": spec.partition_key, "KeyType": "HASH"}]
    if spec.sort_key:
        schema.append({"AttributeName": spec.sort_key, "KeyType": "RANGE"})
    kwargs: dict[str, Any] = {
        "TableName": name,
        "KeySchema": schema,
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": t} for a, t in types.items()],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if spec.indexes:
        kwargs["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index.name,
                "KeySchema": [{"AttributeName": index.partition_key, "KeyType": "HASH"}]
                + ([{"AttributeName": index.sort_key, "KeyType": "RANGE"}] if index.sort_key else []),
                "Projection": {"ProjectionType": index.projection_type}
                | (
                    {"NonKeyAttributes": list(index.projection)}
                    if index.projection_type == "INCLUDE" and index.projection
                    else {}
                ),
            }
            for index in spec.indexes
        ]
    if spec.stream_view:
        kwargs["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": spec.stream_view}
    clients.dynamodb.create_table(**kwargs)
    if spec.ttl_attribute:
        clients.dynamodb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute}
        )


def create_resources(
    clients: AwsClients,
    *,
    prefix: str = "",
    visibility_timeout_seconds: int = 120,
    max_receive_count: int = 5,
    pools: Sequence[str] = (),
    priority_lanes: bool = False,
) -> LocalResources:
    """Create everything; ``prefix`` keeps several stacks apart on one endpoint (tests).

    ``pools``: the declared pools beside the default one, each with its queue and DLQ; with
    ``priority_lanes`` every pool also has a priority queue."""
    names = {spec.default_name: prefix + spec.default_name for spec in ALL_TABLES}
    for spec in ALL_TABLES:
        _create_table(clients, spec, names[spec.default_name])
    lane_settings = (priority_lanes, visibility_timeout_seconds, max_receive_count)
    pool_queues = {
        pool: _pool_queues(clients, prefix, pool, *lane_settings) for pool in (DEFAULT_POOL, *pools)
    }
    default = pool_queues[DEFAULT_POOL]
    bucket = (prefix + BUCKET_NAME).lower()
    clients.s3.create_bucket(Bucket=bucket)
    jobs, connections, tenants, events, webhooks = (names[spec.default_name] for spec in ALL_TABLES)
    webhook_queue_url, webhook_dlq_url = _webhook_queues(clients, prefix, visibility_timeout_seconds)
    event_bus = prefix + EVENT_BUS_NAME
    clients.events.create_event_bus(Name=event_bus)
    return LocalResources(
        jobs,
        connections,
        tenants,
        default[STANDARD_LANE],
        default["dlq"],
        bucket,
        pool_queues,
        job_events_table=events,
        webhooks_table=webhooks,
        webhook_queue_url=webhook_queue_url,
        webhook_dlq_url=webhook_dlq_url,
        event_bus=event_bus,
    )


def _webhook_queues(clients: AwsClients, prefix: str, visibility_seconds: int) -> tuple[str, str]:
    """The webhook attempts queue and its dead-letter queue."""
    dlq_url = clients.sqs.create_queue(QueueName=prefix + WEBHOOK_DLQ_NAME)["QueueUrl"]
    dlq_arn = clients.sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    # A message whose handling keeps raising (not a failed attempt: those are handled) is parked.
    queue_url = clients.sqs.create_queue(
        QueueName=prefix + WEBHOOK_QUEUE_NAME,
        Attributes={
            "VisibilityTimeout": str(visibility_seconds),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}),
        },
    )["QueueUrl"]
    return queue_url, dlq_url


def _pool_queues(
    clients: AwsClients, prefix: str, pool: str, priority: bool, visibility_seconds: int, max_receives: int
) -> dict[str, str]:
    dlq_url = clients.sqs.create_queue(QueueName=prefix + pool_queue_name(pool, "dlq"))["QueueUrl"]
    dlq_arn = clients.sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    attributes = {
        "VisibilityTimeout": str(visibility_seconds),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives}),
    }
    lanes = [STANDARD_LANE, PRIORITY_LANE] if priority else [STANDARD_LANE]
    urls = {"dlq": dlq_url}
    for lane in lanes:
        name = prefix + pool_queue_name(pool, lane)
        urls[lane] = clients.sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    return urls
