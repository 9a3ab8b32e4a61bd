"""Settings, validated once from the environment. Nothing else in the project reads ``os.environ``.

Each process kind has its own model; a field ``foo_bar`` is read from ``FOO_BAR``. The CDK stack
sets every function's environment from :func:`environment_names` so the two cannot drift apart.
"""

from __future__ import annotations

import os
import socket
from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ResourceSettings(BaseSettings):
    """Where the AWS resources are. Names default to the local stack's."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    jobs_table_name: str = "comfy-jobs"
    connections_table_name: str = "comfy-connections"
    job_events_table_name: str = "comfy-job-events"
    jobs_queue_url: str = ""
    bucket_name: str = "comfy-jobs-artifacts"


class RoutingSettings(ResourceSettings):
    """What the processes that send jobs to the queues know of the pools (shared/pools.py)."""

    # The default pool's priority lane (empty: none) and the declared pools, as JSON.
    priority_queue_url: str = ""
    pool_routes: str = ""


class ApiSettings(RoutingSettings):
    """The REST API function."""

    # API key id -> tenant id: the tenant, not the key, owns a job.
    tenants_table_name: str = "comfy-tenants"
    tenant_cache_seconds: int = Field(default=60, ge=0, le=3600)

    output_url_ttl_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    idempotency_ttl_seconds: int = Field(default=24 * 3600, ge=60)
    # A job still queued this long after submission is expired rather than sent to the GPU.
    queue_deadline_seconds: int = Field(default=24 * 3600, ge=10)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_nodes: int = Field(default=500, ge=1)
    max_metadata_bytes: int = Field(default=4096, ge=0)
    # A workflow larger than this is kept in S3 instead of the job item (DynamoDB items stop at 400 KB).
    inline_workflow_max_bytes: int = Field(default=256_000, ge=1024)
    upload_max_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    upload_url_ttl_seconds: int = Field(default=900, ge=60, le=7 * 24 * 3600)
    # The wss:// URL clients connect to with a token from POST /v1/ws-tokens.
    websocket_url: str = ""
    # The https:// @connections endpoint: a job canceled while queued is told to its subscribers.
    websocket_management_url: str = ""
    ws_token_secret: str = ""
    ws_token_secret_arn: str = ""
    ws_token_ttl_seconds: int = Field(default=300, ge=10, le=3600)
    # How long a warm function trusts the runners' file-input catalog before reading it again.
    catalog_cache_seconds: float = Field(default=60.0, ge=0)
    # The model library: <models_prefix><folder>/<name> in models_bucket (empty: the artifacts bucket).
    models_bucket: str = ""
    models_prefix: str = "models/"
    # How long a warm function trusts its listing of a model folder (a name it lacks is looked up).
    models_cache_seconds: float = Field(default=30.0, ge=0)
    # The longest `Prefer: wait` applied; a longer one is shortened to it. In AWS the deployment lowers
    # it so that waiting requests fit in the function's reserved concurrency (docs/deploy.md).
    prefer_wait_max_seconds: int = Field(default=20, ge=0, le=20)
    # Each tier's jobs in flight and priority lane (shared/pools.py); empty: no limit, no priority.
    tier_policies: str = ""
    # The answer's Retry-After when a tier's jobs in flight are at its limit.
    tier_limit_retry_after_seconds: int = Field(default=10, ge=1, le=3600)
    # Webhook endpoints and deliveries (docs/webhooks.md); the queue takes redeliveries.
    webhooks_table_name: str = "comfy-webhooks"
    webhook_queue_url: str = ""
    # The local stack's receivers: http://127.0.0.1 is accepted only when this is set. Never in AWS.
    webhook_allow_local_http: bool = False
    # After a rotation the previous secret keeps signing beside the new one this long.
    webhook_secret_grace_seconds: int = Field(default=24 * 3600, ge=0)


class DlqSettings(ResourceSettings):
    """The function that fails the jobs whose messages reached the dead-letter queue."""

    output_url_ttl_seconds: int = Field(default=3600, ge=60)
    websocket_management_url: str = ""


class WebhookSettings(ResourceSettings):
    """The webhook functions: the dispatcher (the jobs table's stream) and the delivery worker (SQS)."""

    webhooks_table_name: str = "comfy-webhooks"
    webhook_queue_url: str = ""
    webhook_dlq_url: str = ""
    # The EventBridge bus every transition is put on; empty: no bus (a local stack without one).
    event_bus_name: str = ""
    output_url_ttl_seconds: int = Field(default=3600, ge=60)
    # One attempt: connect, send, and read the answer, all within this.
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # A receiver's answer is read up to this many bytes, for the deliveries log.
    webhook_max_response_bytes: int = Field(default=4096, ge=0, le=65536)
    # Exponential backoff with jitter: the n-th retry waits about base * 2^(n-1), at most max_delay,
    # and none starts later than window after the first attempt.
    webhook_retry_base_seconds: float = Field(default=5.0, gt=0)
    webhook_retry_max_delay_seconds: float = Field(default=4 * 3600.0, gt=0)
    webhook_retry_window_seconds: float = Field(default=24 * 3600.0, gt=0)
    # After a rotation the previous secret keeps signing beside the new one this long.
    webhook_secret_grace_seconds: int = Field(default=24 * 3600, ge=0)
    webhook_allow_local_http: bool = False


class WebSocketSettings(ResourceSettings):
    """The WebSocket API's authorizer and route functions."""

    ws_token_secret: str = ""
    ws_token_secret_arn: str = ""
    connection_ttl_seconds: int = Field(default=2 * 3600, ge=60)
    output_url_ttl_seconds: int = Field(default=3600, ge=60)
    # The @connections endpoint; empty: derived from the event's domain name and stage, as in AWS.
    websocket_management_url: str = ""


class RunnerSettings(ResourceSettings):
    """The GPU runner process."""

    comfyui_url: str = "http://127.0.0.1:8188"
    runner_id: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    visibility_timeout_seconds: int = Field(default=120, ge=1, le=43200)
    receive_wait_seconds: int = Field(default=20, ge=0, le=20)
    # A prompt that sends no WebSocket frame this long is treated as a hung ComfyUI.
    comfyui_silence_seconds: float = Field(default=300.0, gt=0)
    comfyui_request_timeout_seconds: float = Field(default=30.0, gt=0)
    max_run_seconds: int = Field(default=3600, ge=1)
    # How often a job in hand reads its cancel flag (one small eventually consistent GetItem).
    cancel_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    # How often a running job's percent is stored (each store rewrites the job item): subscribers get it
    # live over the WebSocket; REST readers see it this stale at most.
    progress_write_seconds: float = Field(default=15.0, gt=0, le=3600)
    stop_timeout_seconds: float = Field(default=100.0, ge=0)
    output_url_ttl_seconds: int = Field(default=3600, ge=60)
    # The https:// @connections endpoint of the WebSocket API's stage; empty turns fan-out off.
    websocket_management_url: str = ""
    # Jobs taken beyond the one running, their prompts already in ComfyUI's queue so it never idles.
    prefetch: int = Field(default=1, ge=0, le=4)
    upload_max_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    # ComfyUI's input, output and temp folders as this process sees them (a volume shared with ComfyUI):
    # each job's files are removed from them once its outputs are in S3. Empty: files stay on disk.
    comfyui_input_dir: str = ""
    comfyui_output_dir: str = ""
    comfyui_temp_dir: str = ""
    # The ECS agent's endpoint, which ECS injects into every container; empty: no scale-in protection.
    ecs_agent_uri: str = ""
    # Scale-in protection window, renewed at every job taken: the jobs in hand (one running, the
    # prefetched ones queued behind it) at their longest, and a margin for uploads.
    task_protection_minutes: int = Field(default=130, ge=1, le=2880)
    # GPU utilisation and memory from nvidia-smi, as metrics, this often; 0 turns them off.
    gpu_metrics_interval_seconds: float = Field(default=60.0, ge=0)
    # The pool this runner serves: its queues, the priority lane's first (empty: none).
    pool_name: str = "default"
    priority_queue_url: str = ""
    # Spot: where the instance metadata service answers (http://169.254.169.254 in EC2; empty: not
    # watched) and whether SIGTERM means the instance is going away (release at once, do not finish).
    spot_metadata_url: str = ""
    spot_poll_seconds: float = Field(default=5.0, gt=0, le=60)
    release_on_sigterm: bool = False
    # With a priority lane, how long each poll of the standard lane waits before the priority one is read.
    priority_poll_wait_seconds: int = Field(default=2, ge=0, le=20)
    # The model library (as for the API), and the local cache ComfyUI reads it from (extra_model_paths):
    # <model_cache_dir>/<folder>/<name>. Empty: models are not fetched, ComfyUI has what its image has.
    models_bucket: str = ""
    models_prefix: str = "models/"
    model_cache_dir: str = ""
    # Least recently used models are evicted past this size, never one a job in hand needs.
    model_cache_bytes: int = Field(default=100 * 1024**3, ge=1)
    # A model is fetched in parts this large, this many at a time (S3 serves each range in parallel).
    model_part_bytes: int = Field(default=16 * 1024 * 1024, ge=64 * 1024)
    model_fetch_threads: int = Field(default=16, ge=1, le=64)
    # Run before the first claim so the first job finds its model loaded: a template name (its
    # defaults), or an API-format workflow as JSON. Empty: no warm-up.
    warmup_workflow: str = ""
    # The GPU instance's on-demand price in USD per hour: each job's GPU cost is its GPU seconds at it.
    gpu_price_per_hour: float = Field(default=0.0, ge=0)
    # Fault injection for crash tests: the runner kills itself (SIGKILL) on reaching this step.
    crash_at_step: Literal["", "after_claim", "mid_run", "after_upload", "after_finish"] = ""
    log_level: str = "INFO"


@lru_cache(maxsize=1)
def api_settings() -> ApiSettings:
    return ApiSettings()


@lru_cache(maxsize=1)
def runner_settings() -> RunnerSettings:
    return RunnerSettings()


def environment_names(model: type[BaseSettings]) -> list[str]:
    """The environment variable names a settings model reads, for CDK and the local stack."""
    return [name.upper() for name in model.model_fields]
