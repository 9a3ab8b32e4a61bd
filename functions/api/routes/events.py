"""/v1/jobs/{job_id}/events: what a job's WebSocket subscribers were told, for clients that poll or resume."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from functions.api.context import ApiContext
from functions.api.deps import Jobs, Owner, get_context
from functions.api.problems import PROBLEM
from functions.observability import logger
from shared.events import replay

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


class JobEvents(BaseModel):
    job_id: str
    items: list[dict[str, Any]] = Field(
        description="The events numbered above `after`, oldest first: `job.status` (the terminal one with "
        "outputs or error), the `job.progress` milestone (50 %, once the job has run 15 s), and "
        "`job.preview` metadata when previews were asked for; each with its `seq`, the same frames "
        "WebSocket subscribers get"
    )
    last_seq: int = Field(description="Ask again with `after` set to this to get only what is newer")


@router.get(
    "/{job_id}/events",
    response_model=JobEvents,
    operation_id="list_job_events",
    responses={404: PROBLEM, 422: PROBLEM},
)
def list_job_events(
    job_id: str,
    owner: Owner,
    jobs: Jobs,
    ctx: Annotated[ApiContext, Depends(get_context)],
    after: Annotated[
        int, Query(ge=0, le=2**53, description="The `seq` of the last event you have; 0 for all")
    ] = 0,
) -> JobEvents:
    """The job's events after `after`, in order. Kept as long as the job; progress beats other than
    the 50 % milestone, and the preview images themselves, are live only."""
    logger.append_keys(job_id=job_id)
    job = jobs.get(owner, job_id)
    logged = ctx.events.after(job_id, after) if ctx.events is not None else []
    items = replay(job, logged, after, jobs.view(job) if job.status.is_terminal else None)
    return JobEvents(job_id=job_id, items=items, last_seq=int(items[-1]["seq"]) if items else after)
