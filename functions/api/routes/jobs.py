"""/v1/jobs: submit, read and cancel jobs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from aws_lambda_powertools.metrics import MetricUnit
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from functions.api.deps import Context, IdempotencyKey, Jobs, Owner, PreferWait
from functions.api.json_body import JSON_BODY_RESPONSES, JsonBodyRoute
from functions.api.periods import MAX_TOTALLED_JOBS, period_ms
from functions.api.problems import PROBLEM
from functions.api.routes.ws_tokens import WEBSOCKET_URL_HEADER, prefers_websocket, websocket_token
from functions.api.schemas import JobList, JobRequest
from functions.observability import logger, metrics
from shared.errors import FieldError, InvalidRequest
from shared.models import JobStatus
from shared.names import JobMetric
from shared.views import JobView

# OpenAPI links: what a client (or a stateful fuzzer) can do next with the job an answer describes.
_JOB_ID = {"job_id": "$response.body#/job_id"}
JOB_LINKS = {
    "GetJob": {"operationId": "get_job", "parameters": _JOB_ID, "description": "Read the job"},
    "CancelJob": {"operationId": "cancel_job", "parameters": _JOB_ID, "description": "Cancel the job"},
    "ListJobsInItsState": {
        "operationId": "list_jobs",
        "parameters": {"status": "$response.body#/status"},
        "description": "List your jobs in the state this one is in",
    },
}

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], route_class=JsonBodyRoute)


@router.post(
    "",
    status_code=202,
    response_model=JobView,
    operation_id="submit_job",
    responses={**JSON_BODY_RESPONSES, 202: {"links": JOB_LINKS}, 503: PROBLEM},
)
def submit_job(
    request: Request,
    body: JobRequest,
    owner: Owner,
    jobs: Jobs,
    key: IdempotencyKey,
    wait: PreferWait,
    ctx: Context,
) -> Response:
    """Queue a workflow, or a template with its params. Answers 202 with the job's receipt at once.

    The same `Idempotency-Key` with the same body returns the first answer again
    (`Idempotent-Replayed: true`) and never makes a second job; with a different body it is a 422.
    With `Prefer: wait=N` (N up to 20 seconds) the answer waits for the job: 200 with the finished job
    if it ends in time, else 202 with the job as it is then (`Preference-Applied: wait=N` either way).
    With `Prefer: websocket` the answer carries a `WebSocket-Url` header: the WebSocket API's URL with a
    fresh token, as `POST /v1/ws-tokens` gives, so a client that follows the job needs no second request.

    The body is JSON: send `Content-Type: application/json` (a body without a Content-Type, or with
    curl's default `application/x-www-form-urlencoded`, is read as JSON too; any other type is a 415).
    """
    outcome = jobs.submit(owner, body, key, request.url.path)
    logger.append_keys(job_id=outcome.job_id)
    headers = {"Location": f"/v1/jobs/{outcome.job_id}"}
    applied = []
    if prefers_websocket(request.headers.get("Prefer")) and (token := websocket_token(owner, ctx)):
        headers[WEBSOCKET_URL_HEADER] = token.url
        applied.append("websocket")
    if outcome.replayed:
        headers["Idempotent-Replayed"] = "true"
    else:
        metrics.add_metric(name=JobMetric.SUBMITTED, unit=MetricUnit.Count, value=1)
        logger.info("job submitted")
    if wait is None:
        if applied:
            headers["Preference-Applied"] = ", ".join(applied)
        return JSONResponse(outcome.body, status_code=outcome.status_code, headers=headers)
    job = jobs.wait(owner, outcome.job_id, wait)
    headers["Preference-Applied"] = ", ".join([f"wait={wait:g}", *applied])
    status = 200 if job.status.is_terminal else 202
    return JSONResponse(jobs.view(job).model_dump(mode="json"), status_code=status, headers=headers)


@router.get("", response_model=JobList, operation_id="list_jobs", responses={422: PROBLEM})
def list_jobs(
    owner: Owner,
    jobs: Jobs,
    status: Annotated[JobStatus | None, Query(description="Only jobs in this state")] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Jobs per page")] = 20,
    cursor: Annotated[
        str | None,
        # Cursors are printable ASCII; the pattern also keeps any URL carrying one within gateway limits.
        Query(max_length=2048, pattern=r"^[!-~]+$", description="next_cursor of the previous page"),
    ] = None,
) -> JobList:
    """Your jobs, newest first, a page at a time."""
    page, next_cursor = jobs.list(owner, status, limit, cursor)
    return JobList(items=[jobs.view(job) for job in page], next_cursor=next_cursor)


class GpuCostTotal(BaseModel):
    """What the caller's jobs created in a period cost on the GPU."""

    since: datetime
    until: datetime
    jobs: int = Field(description="Jobs created in the period")
    gpu_seconds: float = Field(description="Seconds those jobs held a GPU (jobs not finished count 0)")
    gpu_cost_usd: float = Field(description="Those seconds at the instance's configured hourly price")


@router.get("/gpu-cost", response_model=GpuCostTotal, operation_id="total_gpu_cost", responses={422: PROBLEM})
def total_gpu_cost(
    owner: Owner,
    ctx: Context,
    since: Annotated[datetime, Query(description="Start of the period (ISO 8601), inclusive")],
    until: Annotated[
        datetime | None, Query(description="End of the period (ISO 8601), exclusive; now")
    ] = None,
) -> GpuCostTotal:
    """The GPU time and cost of your jobs created in a period of at most 31 days."""
    since_ms, until_ms = period_ms(since, until, ctx.now_ms())
    found = ctx.store.created_between(owner, since_ms, until_ms, MAX_TOTALLED_JOBS)
    if found is None:
        raise InvalidRequest(
            f"More than {MAX_TOTALLED_JOBS} jobs were created in this period; total a shorter one.",
            [FieldError("query:since", "the period holds too many jobs")],
        )
    return GpuCostTotal(
        since=datetime.fromtimestamp(since_ms / 1000, tz=UTC),
        until=datetime.fromtimestamp(until_ms / 1000, tz=UTC),
        jobs=len(found),
        gpu_seconds=round(sum(job.gpu_seconds or 0.0 for job in found), 3),
        gpu_cost_usd=round(sum(job.gpu_cost_usd or 0.0 for job in found), 6),
    )


@router.get(
    "/{job_id}",
    response_model=JobView,
    operation_id="get_job",
    responses={404: PROBLEM, 200: {"links": {"CancelJob": JOB_LINKS["CancelJob"]}}},
)
def get_job(job_id: str, owner: Owner, jobs: Jobs, wait: PreferWait, response: Response) -> JobView:
    """A job: its status, progress, timings, attempts, error, and outputs with presigned URLs.

    With `Prefer: wait=N` (N up to 20 seconds) the answer comes as soon as the job is finished, or
    with its current state when the time is up.
    """
    logger.append_keys(job_id=job_id)
    if wait is None:
        return jobs.view(jobs.get(owner, job_id))
    response.headers["Preference-Applied"] = f"wait={wait:g}"
    return jobs.view(jobs.wait(owner, job_id, wait))


@router.delete(
    "/{job_id}",
    status_code=202,
    response_model=JobView,
    operation_id="cancel_job",
    responses={404: PROBLEM, 409: PROBLEM, 202: {"links": {"GetJob": JOB_LINKS["GetJob"]}}},
)
def cancel_job(job_id: str, owner: Owner, jobs: Jobs) -> JobView:
    """Cancel a job: a queued one at once; a running one is interrupted by its runner (`cancel_requested`)."""
    logger.append_keys(job_id=job_id)
    job = jobs.cancel(owner, job_id)
    logger.info("cancel", extra={"status": job.status.value, "cancel_requested": job.cancel_requested})
    return jobs.view(job)
