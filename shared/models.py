"""The job and everything said about it, independent of where it is stored."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    EXPIRED = "expired"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED, JobStatus.EXPIRED})
ACTIVE_STATUSES = frozenset({JobStatus.QUEUED, JobStatus.RUNNING})


class ErrorCode(StrEnum):
    """Why a job failed; stable strings that clients may branch on."""

    VALIDATION_ERROR = "validation_error"
    EXECUTION_ERROR = "execution_error"
    TIMEOUT = "timeout"
    EXPIRED = "expired"
    CANCELED = "canceled"
    MAX_ATTEMPTS_EXCEEDED = "max_attempts_exceeded"
    OUTPUT_ERROR = "output_error"
    INPUT_ERROR = "input_error"


class JobError(BaseModel):
    code: ErrorCode
    message: str
    node_id: str | None = None
    node_type: str | None = None
    details: dict[str, Any] | None = None


class OutputFile(BaseModel):
    """One file a node produced, stored at ``key`` in the artifacts bucket."""

    node_id: str
    filename: str
    key: str
    content_type: str
    size: int
    # ComfyUI's folder type: "output" for saved files, "temp" for previews; "text" for text outputs.
    kind: str = "output"


class JobWebhook(BaseModel):
    """Where this job's events are also sent, signed with the tenant's job-webhook secret."""

    url: str
    events: list[str]


class JobTimings(BaseModel):
    """Where a job's time went, stage by stage, in milliseconds; a stage not reached is None."""

    queued_ms: int | None = None
    # Making the job's models local on the runner (0: every one was in its cache).
    models_ms: int | None = None
    execution_ms: int | None = None
    upload_ms: int | None = None


class Job(BaseModel):
    """A job as stored. Times are epoch milliseconds."""

    job_id: str
    owner: str
    status: JobStatus = JobStatus.QUEUED
    created_at: int
    updated_at: int
    started_at: int | None = None
    finished_at: int | None = None
    deadline: int | None = None
    attempt: int = 0
    lease_owner: str | None = None
    lease_until: int | None = None
    prompt_id: str | None = None
    progress: float = 0.0
    outputs: list[OutputFile] = Field(default_factory=list)
    error: JobError | None = None
    cancel_requested: bool = False
    metadata: dict[str, Any] | None = None
    template: str | None = None
    # The template's parameters as used: defaults filled in, and the seed chosen when none was given.
    params: dict[str, Any] | None = None
    workflow: dict[str, Any] | None = None
    workflow_s3_key: str | None = None
    # With an Idempotency-Key: the request's fingerprint and when the key lapses (epoch seconds).
    request_hash: str | None = None
    key_expires_at: int | None = None
    webhook: JobWebhook | None = None
    timings: JobTimings | None = None
    # Seconds the attempt that ended the job held its GPU, and what they cost at the instance's price.
    gpu_seconds: float | None = None
    gpu_cost_usd: float | None = None
    # Epoch seconds after which DynamoDB's TTL may delete the item.
    expires_at: int | None = None
    # The runner pool it runs in (None: the default pool) and its lane there ("priority" or None).
    pool: str | None = None
    lane: str | None = None
    # The owner while the job is active, when its tier limits the jobs in flight; terminal transitions
    # remove it (shared/aws/in_flight.py).
    in_flight: str | None = None
    # Moved on by every state change's own conditional write, so event numbers only grow whoever
    # writes (shared/events.py).
    event_seq: int = 0


class QueueMessage(BaseModel):
    """The SQS message body: the job lives in DynamoDB, the message only points at it."""

    v: int = 1
    job_id: str
