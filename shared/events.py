"""A job's event numbers and the log a late reader replays (subscribe with ``after``, the events route).

Numbering. Every frame a job's subscribers get carries ``seq``, a number that only grows for the life of
the job, whoever emits it. A state change is numbered by the job item itself: each conditional transition
write (the runner's, the API's cancel, the dead-letter function's, an expiry) also adds one to the item's
``event_seq``, so the writer that wins the condition owns the next number and no two writers can take
the same one. The number of a state change is ``event_seq * SEQ_BLOCK``; the runner that made it
numbers the events that follow it (progress, previews) ``event_seq * SEQ_BLOCK + n``. Any later state
change, by anyone, is numbered above all of them. A stale runner that loses its fence and still gets a
frame out gives it a number lower than what a client already saw: the client recognises it as old.

The log. What a late reader needs and the job item cannot tell is kept as small items of their own
(one per event, keyed by job and seq, expiring with the job): the whole job's progress at its milestone,
and previews' metadata when someone asked for previews. The job item tells the rest, and a replay reads
it from there (``replay``): the terminal state (outputs, error), and the latest ``running``. While the job
runs, that is its current state; once it ended, a job that has ``started_at`` went running in the state
change just before the terminal one, since only a runner's ``running`` sets ``started_at`` and nothing
takes a job back to queued. So a job that runs once logs no state at all. What the item cannot tell is
an earlier attempt's ``running`` once a later attempt ran the job again: that attempt logs it, from the
item it claimed, when it writes its own ``running`` (``earlier_running``).
"""

from __future__ import annotations

from typing import Any

from shared import frames
from shared.event_numbers import SEQ_BLOCK, state_seq
from shared.models import Job, JobStatus
from shared.views import JobView

__all__ = ["SEQ_BLOCK", "EventNumbers", "latest_seq", "milestone_crossed", "replay", "state_seq"]

# The whole job's percent at which progress is logged: a late reader sees the job halfway, not every
# beat (one write a job; the terminal state, replayed from the job item, carries 100).
PROGRESS_MILESTONES = (50.0,)
# Bounds on what one job's log holds: an earlier attempt's running per retry, the milestone, and
# previews' metadata (each entry under 1 KB), so a job's log stays a few KB whatever it runs.
MAX_PREVIEW_ENTRIES = 10
MAX_ENTRY_BYTES = 1024
MAX_REPLAY = 100


class EventNumbers:
    """Numbers the events that follow a state change this process made (one per job in hand)."""

    def __init__(self, job: Job) -> None:
        self._base = state_seq(job)
        self._next = 1

    def moved_on(self, job: Job) -> int:
        """A state change was written (``job`` is the item after it): its number, and a fresh block."""
        base = state_seq(job)
        if base > self._base:
            self._base, self._next = base, 1
        return self._base

    def next(self) -> int | None:
        """The next event's number; None once the block is used up (the frame still leaves, unnumbered)."""
        if self._next >= SEQ_BLOCK:
            return None
        self._next += 1
        return self._base + self._next - 1


def milestone_crossed(before: float, after: float) -> float | None:
    """The highest milestone passed going from ``before`` to ``after`` percent, if any."""
    crossed = [m for m in PROGRESS_MILESTONES if before < m <= after]
    return crossed[-1] if crossed else None


def running_event(job: Job) -> dict[str, Any] | None:
    """The job's latest ``running`` state change as its subscribers got it, from the job item alone;
    None when the item cannot tell it (the job never ran, or it is queued)."""
    if job.status is JobStatus.RUNNING:
        seq = state_seq(job)
    elif job.status.is_terminal and job.started_at is not None and job.event_seq >= 2:
        seq = state_seq(job) - SEQ_BLOCK
    else:
        return None
    frame: dict[str, Any] = {"type": "job.status", "job_id": job.job_id, "status": JobStatus.RUNNING.value}
    frame["ts"] = job.started_at if job.started_at is not None else job.updated_at
    return frames.numbered(frame, seq)


def earlier_running(claimed: Job) -> dict[str, Any] | None:
    """The ``running`` of the attempt before, which the job item stops telling once a later attempt's
    ``running`` is written over it: ``claimed`` is the item as the later attempt claimed it."""
    return running_event(claimed) if claimed.status is JobStatus.RUNNING else None


def replay(job: Job, logged: list[dict[str, Any]], after: int, view: JobView | None) -> list[dict[str, Any]]:
    """The events after ``after``, oldest first, each once: the logged ones, and the latest ``running``
    and the terminal state from the job item.

    ``view`` is the job's view (outputs with fresh URLs), needed only when the job is terminal."""
    by_seq = {int(e["seq"]): e for e in logged if "seq" in e}
    running = running_event(job)
    if running is not None:
        by_seq[int(running["seq"])] = running
    if job.status.is_terminal:
        terminal = state_seq(job)
        # Nothing follows the terminal state; a stale runner's late entry is not replayed after it.
        by_seq = {seq: e for seq, e in by_seq.items() if seq < terminal}
        frame = frames.status(job, view)
        frame.update(seq=terminal, ts=job.finished_at or job.updated_at)
        by_seq[terminal] = frame
    events = [by_seq[seq] for seq in sorted(by_seq) if seq > after]
    return events[-MAX_REPLAY:] if len(events) > MAX_REPLAY else events


def latest_seq(job: Job, logged_latest: int | None) -> int:
    """The number of the newest event known: the job's last state change or its newest logged event."""
    return max(state_seq(job), logged_latest or 0)
