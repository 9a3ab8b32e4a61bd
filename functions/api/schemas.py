"""Request and response bodies of the REST API; their docstrings and descriptions become the OpenAPI."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.models import Job, JobStatus
from shared.workflow import UI_FORMAT_HINT

EXAMPLE_WORKFLOW = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
    "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "example"}},
}


class JobRequest(BaseModel):
    """A job to run: a ComfyUI workflow in API format."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"workflow": EXAMPLE_WORKFLOW}]}
    )

    workflow: dict[str, Any] = Field(
        description="The graph in ComfyUI's API format: node id -> {class_type, inputs}. "
        "Links are [source_node_id, output_index]."
    )
    metadata: dict[str, Any] | None = Field(
        default=None, description="Your own small JSON object, stored and returned with the job."
    )

    @model_validator(mode="before")
    @classmethod
    def _explain_common_mistakes(cls, data: Any) -> Any:
        if isinstance(data, dict) and "workflow" not in data:
            if isinstance(data.get("nodes"), list) and "links" in data:
                raise ValueError(UI_FORMAT_HINT)
            if "prompt" in data and isinstance(data["prompt"], dict):
                raise ValueError("put the graph under 'workflow', not 'prompt' (ComfyUI's own /prompt body)")
            if data and all(isinstance(v, dict) and "class_type" in v for v in data.values()):
                raise ValueError('the body is a bare graph: send it as {"workflow": <graph>}')
        return data


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


def _time(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, tz=UTC) if ms is not None else None


def job_view(job: Job, outputs: list[OutputView]) -> JobView:
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
    )


class Health(BaseModel):
    status: str = "ok"
    version: str
