"""Re-sends the SQS message of every job whose first send is not known to have happened.

The API marks a new job ``enqueue_pending`` in the same transaction that creates it and clears the
mark once SendMessage succeeds, so a job can never sit queued with no message: at worst it waits for
the next sweep. A second message for the same job is harmless: runners drop duplicate deliveries.
"""

from __future__ import annotations

from dataclasses import dataclass

from functions.observability import logger
from shared.aws.jobs import JobStore
from shared.aws.pool_queues import JobSender
from shared.errors import ServiceUnavailable
from shared.models import JobStatus


@dataclass(frozen=True)
class SweepResult:
    resent: int
    cleared: int
    failed: int


def resend_pending(store: JobStore, queue: JobSender, now_ms: int, grace_seconds: int) -> SweepResult:
    resent = cleared = failed = 0
    # Younger jobs are left to the API request that is probably still sending their message.
    for job_id in store.list_enqueue_pending(created_before_ms=now_ms - grace_seconds * 1000):
        job = store.get(job_id)
        try:
            if job is not None and job.status is JobStatus.QUEUED:
                queue.send_job(job)
                resent += 1
            else:
                cleared += 1
            store.clear_enqueue_pending(job_id)
        except ServiceUnavailable as error:
            failed += 1
            logger.warning("could not re-send", extra={"job_id": job_id, "cause": error.cause})
    if resent or failed:
        logger.info("sweep", extra={"resent": resent, "cleared": cleared, "failed": failed})
    return SweepResult(resent, cleared, failed)
