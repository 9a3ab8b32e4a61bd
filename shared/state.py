"""The job state machine: which transitions exist. Stores enforce them with conditional writes."""

from __future__ import annotations

from shared.models import JobStatus

# queued -> failed covers a workflow ComfyUI refuses at submit and the DLQ giving up on a job that
# never started; queued -> running happens when ComfyUI starts the prompt, not at claim time.
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset(
        {JobStatus.RUNNING, JobStatus.CANCELED, JobStatus.EXPIRED, JobStatus.FAILED, JobStatus.SUCCEEDED}
    ),
    JobStatus.RUNNING: frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED}),
    JobStatus.SUCCEEDED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELED: frozenset(),
    JobStatus.EXPIRED: frozenset(),
}


def can_transition(current: JobStatus, target: JobStatus) -> bool:
    return target in TRANSITIONS[current]


def sources_of(target: JobStatus) -> frozenset[JobStatus]:
    """Every status from which ``target`` may be reached: the condition of a conditional write."""
    return frozenset(status for status, targets in TRANSITIONS.items() if target in targets)
