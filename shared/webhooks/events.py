"""Job events: which transition is which event, and what its message says."""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Any

from shared.models import JobStatus
from shared.views import JobView


class JobEvent(StrEnum):
    RUNNING = "job.running"
    SUCCEEDED = "job.succeeded"
    FAILED = "job.failed"
    CANCELED = "job.canceled"
    EXPIRED = "job.expired"


_BY_STATUS = {
    JobStatus.RUNNING: JobEvent.RUNNING,
    JobStatus.SUCCEEDED: JobEvent.SUCCEEDED,
    JobStatus.FAILED: JobEvent.FAILED,
    JobStatus.CANCELED: JobEvent.CANCELED,
    JobStatus.EXPIRED: JobEvent.EXPIRED,
}

# What a webhook receives when it names no events: the outcomes. `job.running` is asked for by name.
DEFAULT_EVENTS = (JobEvent.SUCCEEDED, JobEvent.FAILED, JobEvent.CANCELED, JobEvent.EXPIRED)


def event_of(old: JobStatus | None, new: JobStatus) -> JobEvent | None:
    """The event a write that took a job from ``old`` to ``new`` is, or None when it is no transition."""
    if old is None or old == new:
        return None
    return _BY_STATUS.get(new)


def event_id(job_id: str, event: JobEvent) -> str:
    """The same for every attempt and every redelivery of one event (Standard Webhooks' ``webhook-id``).

    A job reaches each status at most once, so (job, event) names one event for good.
    """
    digest = hashlib.sha256(f"{job_id}\0{event}".encode()).hexdigest()[:26]
    return f"msg_{digest}"


def event_message(job: JobView, event: JobEvent, occurred_at: str) -> dict[str, Any]:
    """The body of a webhook and the detail of an EventBridge event: the job as GET /v1/jobs/{id} shows it."""
    return {
        "id": event_id(job.job_id, event),
        "type": str(event),
        "timestamp": occurred_at,
        "data": job.model_dump(mode="json"),
    }
