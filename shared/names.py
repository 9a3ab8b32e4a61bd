"""The single source of truth for resource names, key names and environment variable names.

The CDK stack, the runtime settings and the local stack all read this module, so a table key or an
environment variable is renamed in one place only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SERVICE_NAME = "comfy-api-service"
# The CloudFormation stack's name unless `-c stackName=...` says otherwise; the local stack's too.
DEFAULT_STACK_NAME = "ComfyApiService"
METRICS_NAMESPACE = "ComfyApiService"
MESSAGE_VERSION = 1


class Env:
    """Environment variable names read by the settings models (and set by CDK and the local stack)."""

    JOBS_TABLE = "JOBS_TABLE_NAME"
    CONNECTIONS_TABLE = "CONNECTIONS_TABLE_NAME"
    JOB_EVENTS_TABLE = "JOB_EVENTS_TABLE_NAME"
    TENANTS_TABLE = "TENANTS_TABLE_NAME"
    JOBS_QUEUE_URL = "JOBS_QUEUE_URL"
    BUCKET = "BUCKET_NAME"
    COMFYUI_URL = "COMFYUI_URL"
    # ComfyUI's folders as the runner sees them on the volume the two containers share.
    COMFYUI_INPUT_DIR = "COMFYUI_INPUT_DIR"
    COMFYUI_OUTPUT_DIR = "COMFYUI_OUTPUT_DIR"
    COMFYUI_TEMP_DIR = "COMFYUI_TEMP_DIR"
    # The pool a runner serves; the local stack also finds each pool's task role by it.
    POOL_NAME = "POOL_NAME"
    WEBHOOKS_TABLE = "WEBHOOKS_TABLE_NAME"
    WEBHOOK_QUEUE_URL = "WEBHOOK_QUEUE_URL"
    WEBHOOK_DLQ_URL = "WEBHOOK_DLQ_URL"
    EVENT_BUS = "EVENT_BUS_NAME"
    AWS_ENDPOINT_URL = "AWS_ENDPOINT_URL"
    AWS_REGION = "AWS_DEFAULT_REGION"


@dataclass(frozen=True)
class IndexSpec:
    name: str
    partition_key: str
    sort_key: str | None = None
    # Only the keys are projected: an index that is only counted needs no copy of the items.
    keys_only: bool = False
    # What the index holds besides the keys, for the queries that read it: None is every attribute
    # (unless keys_only), () the keys only. Every write that changes a projected attribute writes the
    # index too.
    projection: tuple[str, ...] | None = None

    @property
    def projection_type(self) -> str:
        if self.keys_only or self.projection == ():
            return "KEYS_ONLY"
        return "ALL" if self.projection is None else "INCLUDE"


@dataclass(frozen=True)
class TableSpec:
    """A DynamoDB table's keys: the CDK stack and the local stack both build tables from these."""

    default_name: str
    partition_key: str
    sort_key: str | None = None
    ttl_attribute: str | None = None
    indexes: tuple[IndexSpec, ...] = field(default=())
    # attribute name -> DynamoDB scalar type ("S" or "N") for every key attribute above
    key_types: tuple[tuple[str, str], ...] = field(default=())
    # The table's stream view type, when it has a stream.
    stream_view: str | None = None


class JobAttr:
    """Attribute names of an item in the jobs table."""

    JOB_ID = "job_id"
    OWNER = "owner"
    STATUS = "status"
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"
    STARTED_AT = "started_at"
    FINISHED_AT = "finished_at"
    WORKFLOW = "workflow"
    WORKFLOW_S3_KEY = "workflow_s3_key"
    ATTEMPT = "attempt"
    LEASE_OWNER = "lease_owner"
    LEASE_UNTIL = "lease_until"
    PROMPT_ID = "prompt_id"
    PROGRESS = "progress"
    OUTPUTS = "outputs"
    ERROR = "error"
    CANCEL_REQUESTED = "cancel_requested"
    DEADLINE = "deadline"
    METADATA = "metadata"
    # A job made with an Idempotency-Key: its request's fingerprint, and when the key lapses (epoch
    # seconds); the key names the job (functions/api/idempotency.py), so no other record is kept.
    REQUEST_HASH = "request_hash"
    KEY_EXPIRES_AT = "key_expires_at"
    EXPIRES_AT = "expires_at"
    POOL = "pool"
    LANE = "lane"
    # The owner, while the job is queued or running: every terminal transition removes it, so the
    # sparse index on it counts each tenant's jobs in flight (shared/aws/in_flight.py).
    IN_FLIGHT = "in_flight"
    # How many times the job's event sequence moved on at a state change (shared/events.py).
    EVENT_SEQ = "event_seq"
    # A map: where the job's time went, stage by stage (shared.models.JobTimings).
    TIMINGS = "timings"
    GPU_SECONDS = "gpu_seconds"
    GPU_COST_USD = "gpu_cost_usd"


class ConnectionAttr:
    """Attribute names of an item in the connections table: one connection's subscription to one job."""

    # Its own name, not "job_id": each table is known by its partition key (local/iam/template.py).
    JOB = "subscribed_job"
    CONNECTION_ID = "connection_id"
    EXPIRES_AT = "expires_at"
    # On a subscription: the subscriber asked for live preview images.
    PREVIEWS = "previews"
    PROGRESS_RATE = "progress_rate"


class EventAttr:
    """Attribute names of an item in the job events table: one event a late reader may ask for."""

    # Its own name, not "job_id": each table is known by its partition key (local/iam/template.py).
    JOB = "job"
    SEQ = "seq"
    BODY = "body"
    EXPIRES_AT = "expires_at"


class TenantAttr:
    """Attribute names of an item in the tenants table: a tenant, or one API key of a tenant."""

    # "tenant#<tenant id>" or "key#<API Gateway API key id>": one table, read by the API with one GetItem.
    ITEM = "pk"
    TENANT_ID = "tenant_id"
    API_KEY_ID = "api_key_id"
    NAME = "name"
    TIER = "tier"
    CREATED_AT = "created_at"
    REVOKED_AT = "revoked_at"


def tenant_item_key(tenant_id: str) -> str:
    return f"tenant#{tenant_id}"


def api_key_item_key(api_key_id: str) -> str:
    return f"key#{api_key_id}"


def usage_plan_name(stack_name: str, tier: str) -> str:
    """A tier's usage plan: the CDK stack names its plans so, and the tenants command finds them so."""
    return f"{stack_name}-{tier}"


JOBS_BY_OWNER_INDEX = "by-owner"
JOBS_IN_FLIGHT_INDEX = "by-in-flight"
TENANTS_BY_TENANT_INDEX = "by-tenant"

JOBS_TABLE = TableSpec(
    default_name="comfy-jobs",
    partition_key=JobAttr.JOB_ID,
    ttl_attribute=JobAttr.EXPIRES_AT,
    indexes=(
        # Keys only: a listing reads its page of jobs whole (BatchGetItem), so no job update but its
        # creation and deletion writes the index.
        IndexSpec(JOBS_BY_OWNER_INDEX, JobAttr.OWNER, JobAttr.CREATED_AT, projection=()),
        IndexSpec(JOBS_IN_FLIGHT_INDEX, JobAttr.IN_FLIGHT, JobAttr.CREATED_AT, keys_only=True),
    ),
    key_types=(
        (JobAttr.JOB_ID, "S"),
        (JobAttr.OWNER, "S"),
        (JobAttr.CREATED_AT, "N"),
        (JobAttr.IN_FLIGHT, "S"),
    ),
    # The outbox of job events: every committed status change, whoever wrote it (docs/webhooks.md).
    stream_view="NEW_AND_OLD_IMAGES",
)

CONNECTIONS_TABLE = TableSpec(
    default_name="comfy-connections",
    # A job's subscribers are one Query on its partition (the fan-out reads them for every frame), and
    # a subscription is one item: no index to write, nothing to delete when a socket closes (its item
    # expires, and a post that answers 410 Gone deletes it).
    partition_key=ConnectionAttr.JOB,
    sort_key=ConnectionAttr.CONNECTION_ID,
    ttl_attribute=ConnectionAttr.EXPIRES_AT,
    key_types=((ConnectionAttr.JOB, "S"), (ConnectionAttr.CONNECTION_ID, "S")),
)

# The events of each job a late reader may replay (shared/events.py), expiring with the job.
JOB_EVENTS_TABLE = TableSpec(
    default_name="comfy-job-events",
    partition_key=EventAttr.JOB,
    sort_key=EventAttr.SEQ,
    ttl_attribute=EventAttr.EXPIRES_AT,
    key_types=((EventAttr.JOB, "S"), (EventAttr.SEQ, "N")),
)

# Which tenant each API key belongs to: the owner of a job is its tenant, which outlives its keys.
TENANTS_TABLE = TableSpec(
    default_name="comfy-tenants",
    partition_key=TenantAttr.ITEM,
    indexes=(IndexSpec(TENANTS_BY_TENANT_INDEX, TenantAttr.TENANT_ID, TenantAttr.ITEM),),
    key_types=((TenantAttr.ITEM, "S"), (TenantAttr.TENANT_ID, "S")),
)


class WebhookAttr:
    """Attribute names of an item in the webhooks table: an endpoint, a tenant's secret, or a delivery."""

    # "tenant#<owner>" (endpoints, the job-webhook secret) or "job#<job_id>" (that job's deliveries)
    SCOPE = "scope"
    ITEM = "item"
    EXPIRES_AT = "expires_at"


# The webhooks table's partition and sort keys: endpoints and secrets under the tenant, deliveries under
# the job, so a tenant's endpoints and a job's deliveries are each one Query.
WEBHOOKS_TABLE = TableSpec(
    default_name="comfy-webhooks",
    partition_key=WebhookAttr.SCOPE,
    sort_key=WebhookAttr.ITEM,
    ttl_attribute=WebhookAttr.EXPIRES_AT,
    key_types=((WebhookAttr.SCOPE, "S"), (WebhookAttr.ITEM, "S")),
)

ALL_TABLES = (
    JOBS_TABLE,
    CONNECTIONS_TABLE,
    TENANTS_TABLE,
    JOB_EVENTS_TABLE,
    WEBHOOKS_TABLE,
)
# The stack output that names the tenants table, whose name CloudFormation generates.
TENANTS_TABLE_OUTPUT = "TenantsTable"
# s3://bucket/prefix of the model library, for the platform team's upload command.
MODELS_LOCATION_OUTPUT = "ModelsLocation"

JOBS_QUEUE_NAME = "comfy-jobs"
JOBS_DLQ_NAME = "comfy-jobs-dlq"
# A declared pool's queues carry these tags, so the local stack knows each by what only it has.
POOL_TAG = "comfy:pool"
LANE_TAG = "comfy:lane"


def pool_queue_name(pool: str, lane: str) -> str:
    """The local name of a pool's queue: lane "standard", "priority" or "dlq"."""
    if pool == "default":
        return {"standard": JOBS_QUEUE_NAME, "dlq": JOBS_DLQ_NAME}.get(lane, f"{JOBS_QUEUE_NAME}-priority")
    return f"{JOBS_QUEUE_NAME}-{pool}" + ("" if lane == "standard" else f"-{lane}")


# Webhook attempts waiting for their time (SQS delays), and the events given up after the last try.
WEBHOOK_QUEUE_NAME = "comfy-webhooks"
WEBHOOK_DLQ_NAME = "comfy-webhooks-dlq"
# Every job transition is put on this EventBridge bus, with this source and the event name as detail-type.
EVENT_BUS_NAME = "comfy-api-service"
EVENT_SOURCE = SERVICE_NAME
# The tag that says which of these a queue of the template is (its physical name is CloudFormation's).
QUEUE_ROLE_TAG = "comfy-api-service:queue"
BUCKET_NAME = "comfy-jobs-artifacts"


class S3Prefix:
    OUTPUTS = "outputs"
    INPUTS = "inputs"
    WORKFLOWS = "workflows"
    CATALOG = "catalog"
    # The model library's default place: <models>/<ComfyUI folder>/<name> (shared.aws.models).
    MODELS = "models"


# What the runners' ComfyUI reads from its folders (shared.file_inputs): runners publish it, the API reads it.
COMFYUI_CATALOG_KEY = f"{S3Prefix.CATALOG}/comfyui-file-inputs.json"


def output_key(owner: str, job_id: str, attempt: int, node_id: str, filename: str) -> str:
    """Scoped by attempt: no attempt can overwrite or delete an object another attempt's result names."""
    return f"{attempt_outputs_prefix(owner, job_id, attempt)}{node_id}/{filename}"


def job_outputs_prefix(owner: str, job_id: str) -> str:
    return f"{S3Prefix.OUTPUTS}/{owner}/{job_id}/"


def attempt_outputs_prefix(owner: str, job_id: str, attempt: int) -> str:
    return f"{job_outputs_prefix(owner, job_id)}{attempt}/"


def input_key(owner: str, upload_id: str) -> str:
    return f"{S3Prefix.INPUTS}/{owner}/{upload_id}"


def workflow_key(owner: str, job_id: str, request_id: str) -> str:
    """Per request, not per job: requests that race for one idempotent job each write their own object,
    so the one refused deletes its own and never the winner's."""
    return f"{S3Prefix.WORKFLOWS}/{owner}/{job_id}/{request_id}.json"


class JobMetric:
    """Job metrics the runtime emits (Powertools EMF, namespace METRICS_NAMESPACE) and the dashboard plots."""

    SUBMITTED = "JobsSubmitted"
    SUCCEEDED = "JobsSucceeded"
    FAILED = "JobsFailed"
    CANCELED = "JobsCanceled"
    QUEUE_WAIT_MS = "QueueWaitMs"
    RUN_TIME_MS = "RunTimeMs"
    ORCHESTRATION_OVERHEAD_MS = "OrchestrationOverheadMs"
    # Time a job spent making its models local (0 when all were in the runner's cache).
    MODEL_FETCH_MS = "ModelFetchMs"
    # The job's timings (shared.models.JobTimings) and GPU cost, one value each per finished job.
    QUEUED_MS = "QueuedMs"
    EXECUTION_MS = "ExecutionMs"
    UPLOAD_MS = "UploadMs"
    GPU_SECONDS = "GpuSeconds"
    GPU_COST_USD = "GpuCostUsd"


class GpuMetric:
    """GPU metrics the runner emits (EMF, namespace METRICS_NAMESPACE) from nvidia-smi, and alarms watch."""

    UTILIZATION = "GpuUtilization"
    MEMORY_USED_MIB = "GpuMemoryUsedMiB"
    MEMORY_UTILIZATION = "GpuMemoryUtilization"


# REST resources served without an API key: the API's own description, which a browser must be able to
# open. ``{asset}`` is one path segment (the docs page's script and style sheet).
PUBLIC_REST_PATHS = ("/v1/openapi.json", "/v1/docs", "/v1/docs/{asset}")

# The WebSocket API: the query parameter $connect's authorizer reads, and the client actions (route keys).
WS_TOKEN_QUERY_PARAMETER = "token"  # noqa: S105 (a parameter name, not a secret)
WS_ROUTE_SELECTION_EXPRESSION = "$request.body.action"
# $connect's mock integration: API Gateway takes the integration's status from this request template
# (selected by the static expression below; a mock without an integer statusCode fails the handshake
# with a 500), and a 2xx status lets in whatever the authorizer allowed. No function runs.
WS_CONNECT_TEMPLATE_SELECTION = "\\$default"
WS_CONNECT_MOCK_TEMPLATES = {"$default": '{"statusCode": 200}'}


class WsAction:
    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"
    PING = "ping"


WS_ACTIONS = (WsAction.SUBSCRIBE, WsAction.UNSUBSCRIBE, WsAction.PING)
