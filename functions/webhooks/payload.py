"""What a job event says, and when it happened."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from shared.models import Job
from shared.views import job_view
from shared.webhooks.events import JobEvent, event_message


def occurred_at(job: Job, event: JobEvent) -> str:
    """The time of the transition: the job's start for ``job.running``, its end for an outcome."""
    ms = job.started_at if event is JobEvent.RUNNING else job.finished_at
    return datetime.fromtimestamp((ms or job.updated_at) / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def job_event(job: Job, event: JobEvent, presign: Callable[[str], str]) -> dict[str, Any]:
    """The job as GET /v1/jobs/{id} shows it now, outputs with fresh presigned URLs."""
    return event_message(job_view(job, presign), event, occurred_at(job, event))
