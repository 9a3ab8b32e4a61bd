"""/v1/jobs: submit, read and cancel jobs."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from functions.api.deps import BodyLimit, IdempotencyKey, Jobs, Owner
from functions.api.problems import PROBLEM
from functions.api.schemas import JobRequest
from functions.observability import logger, metrics
from shared.views import JobView

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


@router.post(
    "",
    status_code=202,
    response_model=JobView,
    dependencies=[BodyLimit],
    responses={413: PROBLEM, 422: PROBLEM, 503: PROBLEM},
)
def submit_job(request: Request, body: JobRequest, owner: Owner, jobs: Jobs, key: IdempotencyKey) -> Response:
    """Queue a workflow. Answers 202 with the job's receipt at once; the job runs on a GPU runner.

    The same `Idempotency-Key` with the same body returns the first answer again
    (`Idempotent-Replayed: true`) and never makes a second job; with a different body it is a 422.
    """
    outcome = jobs.submit(owner, body, key, request.url.path)
    logger.append_keys(job_id=outcome.job_id)
    headers = {"Location": f"/v1/jobs/{outcome.job_id}"}
    if outcome.replayed:
        headers["Idempotent-Replayed"] = "true"
    else:
        metrics.add_metric(name="JobsSubmitted", unit=MetricUnit.Count, value=1)
        logger.info("job submitted")
    return JSONResponse(outcome.body, status_code=outcome.status_code, headers=headers)


@router.get("/{job_id}", response_model=JobView, responses={404: PROBLEM})
def get_job(job_id: str, owner: Owner, jobs: Jobs) -> JobView:
    """A job: its status, progress, timings, attempts, error, and outputs with presigned URLs."""
    logger.append_keys(job_id=job_id)
    return jobs.view(jobs.get(owner, job_id))


@router.delete("/{job_id}", status_code=202, response_model=JobView, responses={404: PROBLEM, 409: PROBLEM})
def cancel_job(job_id: str, owner: Owner, jobs: Jobs) -> JobView:
    """Cancel a job: a queued one at once; a running one is interrupted by its runner (`cancel_requested`)."""
    logger.append_keys(job_id=job_id)
    job = jobs.cancel(owner, job_id)
    logger.info("cancel", extra={"status": job.status.value, "cancel_requested": job.cancel_requested})
    return jobs.view(job)
