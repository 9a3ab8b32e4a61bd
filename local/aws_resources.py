"""Creates every table, queue and bucket of the service from ``shared.names``, for moto or LocalStack."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from shared.aws.clients import AwsClients
from shared.names import ALL_TABLES, BUCKET_NAME, JOBS_DLQ_NAME, JOBS_QUEUE_NAME, TableSpec


@dataclass(frozen=True)
class LocalResources:
    jobs_table: str
    idempotency_table: str
    connections_table: str
    tenants_table: str
    queue_url: str
    dlq_url: str
    bucket: str
    job_events_table: str = ""


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
                "Projection": {"ProjectionType": "ALL"},
            }
            for index in spec.indexes
        ]
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
) -> LocalResources:
    """Create everything; ``prefix`` keeps several stacks apart on one endpoint (tests)."""
    names = {spec.default_name: prefix + spec.default_name for spec in ALL_TABLES}
    for spec in ALL_TABLES:
        _create_table(clients, spec, names[spec.default_name])
    dlq_url = clients.sqs.create_queue(QueueName=prefix + JOBS_DLQ_NAME)["QueueUrl"]
    dlq_arn = clients.sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue_url = clients.sqs.create_queue(
        QueueName=prefix + JOBS_QUEUE_NAME,
        Attributes={
            "VisibilityTimeout": str(visibility_timeout_seconds),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count}
            ),
        },
    )["QueueUrl"]
    bucket = (prefix + BUCKET_NAME).lower()
    clients.s3.create_bucket(Bucket=bucket)
    jobs, idempotency, connections, tenants, events = (names[spec.default_name] for spec in ALL_TABLES)
    return LocalResources(jobs, idempotency, connections, tenants, queue_url, dlq_url, bucket, events)
