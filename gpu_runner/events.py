"""One attempt's part of its job's event log: numbers its events and keeps the few a late reader needs.

What is kept (shared/events.py): the whole job's progress at its milestone once the attempt has run as
long as the runner waits between progress writes to the job item (15 s deployed: a shorter job's late
reader gets its outcome, which says more), previews' metadata while someone asked for previews (at
most ``MAX_PREVIEW_ENTRIES``), and, when this attempt runs a job an earlier attempt had started, that
attempt's ``running`` (the job item tells only the latest). A job run once writes at most one entry.
Each is one small write, made off the prompt loop and only while the attempt holds its lease; a write
that fails costs a late reader that one entry, never the job.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from gpu_runner.log import logger
from gpu_runner.notify import Guard
from shared import frames
from shared.aws.events import EventLog
from shared.events import MAX_PREVIEW_ENTRIES, EventNumbers, earlier_running, milestone_crossed
from shared.models import Job, JobStatus

# When a job carries no expiry of its own, its log is kept this long.
DEFAULT_KEEP_SECONDS = 30 * 24 * 3600


class AttemptEvents:
    def __init__(
        self,
        log: EventLog | None,
        job: Job,
        guard: Guard,
        progress_after_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = log
        self._job_id = job.job_id
        self._expires_at = job.expires_at or int(time.time()) + DEFAULT_KEEP_SECONDS
        self._guard = guard
        self._numbers = EventNumbers(job)
        self._progress_after = progress_after_seconds
        self._clock = clock
        self._running_since: float | None = None
        # Milestones are of the whole job: what earlier attempts passed is not flagged or logged again.
        self._percent_passed = job.progress
        self._percent_logged = job.progress
        self._previews_logged = 0
        self._writes: set[asyncio.Task[None]] = set()
        self.entries_written = 0

    def state_changed(self, job: Job, before: Job | None = None) -> int:
        """``job`` was just written with a new state (``before``: the item this attempt held before the
        write): its number. The state itself is replayed from the job item; an earlier attempt's
        ``running`` that this write hides from it is logged."""
        seq = self._numbers.moved_on(job)
        if job.status is JobStatus.RUNNING and self._running_since is None:
            self._running_since = self._clock()
        hidden = earlier_running(before) if before is not None and not job.status.is_terminal else None
        if hidden is not None:
            self._keep(hidden)
        return seq

    def progress(
        self, job: Job, node_id: str, node_type: str | None, value: float, maximum: float
    ) -> tuple[int | None, bool]:
        """The progress frame's number, and whether it passes a milestone (never coalesced away). The
        milestone passed is logged once the attempt has run ``progress_after_seconds``."""
        seq = self._numbers.next()
        if seq is None:
            return seq, False
        passed = milestone_crossed(self._percent_passed, job.progress) is not None
        if passed:
            self._percent_passed = job.progress
        if milestone_crossed(self._percent_logged, job.progress) is not None and self._ran_long_enough():
            self._percent_logged = job.progress
            frame = frames.progress(job.job_id, node_id, node_type, value, maximum, job.progress)
            self._keep(frames.numbered(frame, seq))
        return seq, passed

    def _ran_long_enough(self) -> bool:
        started = self._running_since
        return started is not None and self._clock() - started >= self._progress_after

    def next(self) -> int | None:
        return self._numbers.next()

    def preview_sent(self, frame: dict[str, Any]) -> None:
        """Keeps a preview's metadata (never its image) for late readers, up to the bound."""
        if self._previews_logged >= MAX_PREVIEW_ENTRIES or "seq" not in frame:
            return
        self._previews_logged += 1
        self._keep({k: v for k, v in frame.items() if k != "data"})

    async def drain(self) -> None:
        """Waits for the writes in flight (at the attempt's end)."""
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)

    def _keep(self, event: dict[str, Any]) -> None:
        if self._log is None:
            return
        task = asyncio.create_task(self._write(event))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write(self, event: dict[str, Any]) -> None:
        assert self._log is not None
        try:
            if await self._guard.holds():
                await asyncio.to_thread(self._log.append, self._job_id, event, self._expires_at)
                self.entries_written += 1
        except Exception as error:  # a lost entry costs a late reader one event, never the job
            logger.warning(
                "event log write failed",
                extra={"job_id": self._job_id, "seq": event.get("seq"), "error": str(error)},
            )
