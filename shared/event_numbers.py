"""The number of a job's latest state change (shared/events.py explains the numbering), on its own so
the job's view can carry it without importing the event log's code."""

from __future__ import annotations

from shared.models import Job

# Room for this many numbered events after each state change.
SEQ_BLOCK = 1_000_000


def state_seq(job: Job) -> int:
    """The number of the job's latest state change (0 while it has had none: queued as created)."""
    return job.event_seq * SEQ_BLOCK
