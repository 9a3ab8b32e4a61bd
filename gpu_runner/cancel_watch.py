"""Hears a cancel within about a second, apart from the heartbeat (which beats every visibility/3).

The API marks a running job ``cancel_requested`` (or cancels a queued one outright); this loop reads
those few attributes with a projected, eventually consistent GetItem (half a read unit) and sets the
attempt's stop request, which the prompt follower turns into ``/interrupt`` or a queue delete. A read
that is a moment stale only delays the cancel to the next poll.

While frames flow the poll is not needed: before asking a running job to stop, the API puts a cancel
mark in the job's partition of the connections table, which the fan-out reads for every frame
(gpu_runner/cancel_hints.py). So a poll is skipped when such a read came back within the last
interval without the mark, and made at once when one sees it: the mark only says "read the job", the
job itself says whether this attempt is asked to stop, so a stale mark cancels nothing. Once a mark
was seen the watch polls every interval again until the job says so or ends. Without frames (a job
still waiting in ComfyUI's queue, a long node that reports no progress, no WebSocket API) it polls as
before.
"""

from __future__ import annotations

import asyncio

from gpu_runner.cancel_hints import CancelHints
from gpu_runner.lease import Lease
from gpu_runner.log import logger
from shared.aws.jobs import JobStore


class CancelWatch:
    def __init__(
        self,
        store: JobStore,
        job_id: str,
        lease: Lease,
        interval_seconds: float,
        hints: CancelHints | None = None,
    ) -> None:
        self._store = store
        self._job_id = job_id
        self._lease = lease
        self._interval = interval_seconds
        self._hints = hints or CancelHints()
        self.polls = 0
        self.skipped = 0

    def _active(self) -> bool:
        return not self._lease.lost and not self._lease.ended and self._lease.stop.reason is None

    async def run(self) -> None:
        self._hints.watch(self._job_id)
        try:
            await self._watch()
        finally:
            self._hints.forget(self._job_id)

    async def _watch(self) -> None:
        marked = False
        while self._active():
            if marked:
                await asyncio.sleep(self._interval)
            else:
                marked = await self._hints.wait_for_mark(self._job_id, self._interval)
                if not marked and self._hints.looked_up_within(self._job_id, self._interval):
                    self.skipped += 1
                    continue  # a read of the job's partition just now showed no cancel mark
            if self._active():
                await self._poll()

    async def _poll(self) -> None:
        self.polls += 1
        try:
            state = await asyncio.to_thread(self._store.cancel_state, self._job_id)
        except Exception as error:  # a missed poll only delays the cancel to the next one
            logger.warning("cancel poll failed", extra={"job_id": self._job_id, "error": str(error)})
            return
        if state is None or state.attempt != self._lease.attempt:
            return  # stale, or another attempt's: the lease decides about that
        if state.status.is_terminal:
            # Ended by someone else (the API canceled it while queued, or the dead-letter function
            # failed it), who told the subscribers: this attempt acts no more.
            await self._lease.fenced_out()
        elif state.cancel_requested:
            self._lease.stop.set("canceled")
