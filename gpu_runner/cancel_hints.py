"""What the fan-out's reads of a job's subscribers tell its cancel watch.

The fan-out reads the job's partition of the connections table for every frame that leaves; the same
read shows the job's cancel mark (shared/aws/connections.py). The watch skips its own poll of the job
while such reads flow, and is woken at once when one sees the mark. Only jobs being watched are
remembered, so the hints of jobs that ended take no memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import time


class CancelHints:
    def __init__(self) -> None:
        self._looked_at: dict[str, float] = {}
        self._marked: dict[str, asyncio.Event] = {}

    def watch(self, job_id: str) -> None:
        """The job's attempt starts: from now its lookups count (a former attempt's do not)."""
        self._looked_at.pop(job_id, None)
        self._marked[job_id] = asyncio.Event()

    def forget(self, job_id: str) -> None:
        self._looked_at.pop(job_id, None)
        self._marked.pop(job_id, None)

    def looked_up(self, job_id: str, cancel_marked: bool) -> None:
        """A read of the job's partition came back (only a read that succeeded counts)."""
        marked = self._marked.get(job_id)
        if marked is None:
            return  # not watched: its attempt ended
        self._looked_at[job_id] = time.monotonic()
        if cancel_marked:
            marked.set()

    def looked_up_within(self, job_id: str, seconds: float) -> bool:
        looked_at = self._looked_at.get(job_id)
        return looked_at is not None and time.monotonic() - looked_at < seconds

    async def wait_for_mark(self, job_id: str, timeout: float) -> bool:
        """True as soon as a lookup sees the job's cancel mark; False after ``timeout`` without one."""
        marked = self._marked.get(job_id)
        if marked is None:
            await asyncio.sleep(timeout)
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(marked.wait(), timeout)
        return marked.is_set()
