"""Where the service keeps its state: four DynamoDB tables, the jobs queue and its DLQ, the artifacts bucket.

Keys, indexes and TTL attributes come from ``shared.names``, the same specs the runtime and the local stack
read. Physical names are CloudFormation's own (the stack's name and a suffix), handed to every process in
its environment: a fixed name would collide with the resources a failed or deleted stack left behind.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import ServiceConfig
from shared.names import (
    CONNECTIONS_TABLE,
    JOB_EVENTS_TABLE,
    JOBS_TABLE,
    TENANTS_TABLE,
    WEBHOOKS_TABLE,
    S3Prefix,
    TableSpec,
)

_ATTRIBUTE_TYPES = {"S": dynamodb.AttributeType.STRING, "N": dynamodb.AttributeType.NUMBER}


def _attribute(spec: TableSpec, name: str) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=name, type=_ATTRIBUTE_TYPES[dict(spec.key_types)[name]])


def index_arn(table: dynamodb.ITable, index_name: str) -> str:
    """One index's ARN, so a Query grant names the index instead of ``index/*``."""
    return f"{table.table_arn}/index/{index_name}"


def object_arns(bucket: s3.IBucket, prefix: str) -> str:
    """Every object under one top-level prefix (objects are keyed by owner and id below it)."""
    return bucket.arn_for_objects(f"{prefix}/*")


class DataStore(Construct):
    """The tables, the queues and the buckets."""

    def __init__(self, scope: Construct, construct_id: str, *, config: ServiceConfig) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        # Kept when the stack is deleted or a change replaces them, but removed when their own creation
        # rolls back: a failed first deploy leaves nothing behind that the retry would trip over.
        removal = RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE if config.retain_data else RemovalPolicy.DESTROY

        self.jobs_table = self._table("JobsTable", JOBS_TABLE, removal)
        self.connections_table = self._table("ConnectionsTable", CONNECTIONS_TABLE, removal)
        # API key id -> tenant id; written by the tenants command (python -m admin), read by the api function.
        self.tenants_table = self._table("TenantsTable", TENANTS_TABLE, removal)
        # What late readers of a job replay (subscribe with after, GET /v1/jobs/{id}/events).
        self.job_events_table = self._table("JobEventsTable", JOB_EVENTS_TABLE, removal)
        # Webhook endpoints and secrets under the tenant, deliveries under the job (infra/webhooks.py).
        self.webhooks_table = self._table("WebhooksTable", WEBHOOKS_TABLE, removal)

        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(config.dlq_retention_days),
            # The dlq function consumes it: AWS advises six times the function's timeout (30 s).
            visibility_timeout=Duration.seconds(180),
        )
        self.queue = sqs.Queue(
            self,
            "JobsQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            # Short on purpose: the runner extends it while it works, and a dead runner's job comes back soon.
            visibility_timeout=Duration.seconds(config.visibility_timeout_seconds),
            receive_message_wait_time=Duration.seconds(20),
            retention_period=Duration.days(config.queue_retention_days),
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=config.max_receive_count, queue=self.dead_letter_queue
            ),
        )

        self.log_bucket = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            lifecycle_rules=[s3.LifecycleRule(id="expire-logs", expiration=Duration.days(365))],
            removal_policy=removal,
        )
        self.bucket = s3.Bucket(
            self,
            "Artifacts",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            server_access_logs_bucket=self.log_bucket,
            server_access_logs_prefix="artifacts/",
            lifecycle_rules=self._lifecycle_rules(),
            removal_policy=removal,
        )

    def allow_browser_origins(self, own_origins: list[str]) -> None:
        """Browsers on the API's own origins and ``corsAllowedOrigins`` may use presigned URLs; no others."""
        # Uploads are presigned form POSTs; outputs are presigned GETs.
        self.bucket.add_cors_rule(
            allowed_methods=[s3.HttpMethods.POST, s3.HttpMethods.GET, s3.HttpMethods.HEAD],
            allowed_origins=list(dict.fromkeys((*own_origins, *self._config.cors_allowed_origins))),
            allowed_headers=["*"],
            exposed_headers=["ETag"],
            max_age=3000,
        )

    def _table(self, construct_id: str, spec: TableSpec, removal: RemovalPolicy) -> dynamodb.Table:
        table = dynamodb.Table(
            self,
            construct_id,
            partition_key=_attribute(spec, spec.partition_key),
            sort_key=_attribute(spec, spec.sort_key) if spec.sort_key else None,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=spec.ttl_attribute,
            stream=dynamodb.StreamViewType[spec.stream_view] if spec.stream_view else None,
            # Off until asked for: a protected table cannot be removed when its own creation rolls back.
            deletion_protection=self._config.table_deletion_protection,
            removal_policy=removal,
        )
        for index in spec.indexes:
            table.add_global_secondary_index(
                index_name=index.name,
                partition_key=_attribute(spec, index.partition_key),
                sort_key=_attribute(spec, index.sort_key) if index.sort_key else None,
                projection_type=dynamodb.ProjectionType[index.projection_type],
                non_key_attributes=list(index.projection)
                if index.projection_type == "INCLUDE" and index.projection
                else None,
            )
        return table

    def _lifecycle_rules(self) -> list[s3.LifecycleRule]:
        days = {
            S3Prefix.OUTPUTS: self._config.output_retention_days,
            S3Prefix.INPUTS: self._config.input_retention_days,
            S3Prefix.WORKFLOWS: self._config.workflow_retention_days,
        }
        rules = [
            s3.LifecycleRule(id=f"expire-{prefix}", prefix=f"{prefix}/", expiration=Duration.days(age))
            for prefix, age in days.items()
        ]
        rules.append(
            s3.LifecycleRule(
                id="abort-incomplete-uploads", abort_incomplete_multipart_upload_after=Duration.days(1)
            )
        )
        return rules
