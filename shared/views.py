"""A job as its owner sees it, the same over REST and WebSocket, with presigned output URLs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from shared.event_numbers import state_seq
from shared.models import Job, JobStatus, JobTimings, JobWebhook


class OutputView(BaseModel):
    node_id: str
    filename: str
    content_type: str
    size: int
    kind: str = Field(description="'output' (saved), 'temp' (preview) or 'text'")
    url: str = Field(description="A presigned GET URL, valid for a limited time")


class JobErrorView(BaseModel):
    code: str
    message: str
    node_id: str | None = None
    node_type: str | None = None
    details: dict[str, Any] | None = None


class JobView(BaseModel):
    """A job as its owner sees it."""

    job_id: str
    status: JobStatus
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    deadline: datetime | None = Field(default=None, description="When a job still queued expires")
    attempts: int = Field(description="How many times a runner has taken the job")
    progress: float = Field(description="Percent of the workflow's nodes done, 0 to 100")
    cancel_requested: bool = False
    error: JobErrorView | None = None
    outputs: list[OutputView] = Field(default_factory=list)
    metadata: dict[str, Any] | None = None
    template: str | None = Field(default=None, description="The template the job was made from, if any")
    params: dict[str, Any] | None = Field(
        default=None, description="The template parameters used, defaults and the chosen seed included"
    )
    pool: str = Field(default="default", description="The runner pool the job runs in")
    webhook: JobWebhook | None = Field(default=None, description="Where this job's events are also sent")
    timings: JobTimings | None = Field(default=None, description="Where the job's time went, in ms")
    gpu_seconds: float | None = Field(default=None, description="Seconds the job held its GPU")
    gpu_cost_usd: float | None = Field(
        default=None, description="The GPU seconds at the instance's configured hourly price"
    )
    seq: int = Field(
        default=0,
        description="The seq of the job's latest state change (0 while queued as submitted): subscribe "
        "with 'after' set to it and the WebSocket sends only what happened since, with no snapshot",
    )


def _time(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, tz=UTC) if ms is not None else None


def job_view(job: Job, presign: Callable[[str], str]) -> JobView:
    """``presign`` turns an output's S3 key into a URL the owner can GET."""
    outputs = [
        OutputView(
            node_id=o.node_id,
            filename=o.filename,
            content_type=o.content_type,
            size=o.size,
            kind=o.kind,
            url=presign(o.key),
        )
        for o in job.outputs
    ]
    return JobView(
        job_id=job.job_id,
        status=job.status,
        created_at=datetime.fromtimestamp(job.created_at / 1000, tz=UTC),
        updated_at=datetime.fromtimestamp(job.updated_at / 1000, tz=UTC),
        started_at=_time(job.started_at),
        finished_at=_time(job.finished_at),
        deadline=_time(job.deadline),
        attempts=job.attempt,
        progress=job.progress,
        cancel_requested=job.cancel_requested,
        error=JobErrorView.model_validate(job.error.model_dump()) if job.error else None,
        outputs=outputs,
        metadata=job.metadata,
        template=job.template,
        pool=job.pool or "default",
        params=job.params,
        webhook=job.webhook,
        timings=job.timings,
        gpu_seconds=job.gpu_seconds,
        gpu_cost_usd=job.gpu_cost_usd,
        seq=state_seq(job),
    )
