"""Hears a cancel about once a second, apart from the heartbeat (which beats every visibility/3).

The API marks a running job ``cancel_requested`` (or cancels a queued one outright); this loop reads
those few attributes with a projected, eventually consistent GetItem (half a read unit) and sets the
attempt's stop request, which the prompt follower turns into ``/interrupt`` or a queue delete. A read
that is a moment stale only delays the cancel to the next poll.
"""

from __future__ import annotations

import asyncio

from gpu_runner.lease import Lease
from gpu_runner.log import logger
from shared.aws.jobs import JobStore


class CancelWatch:
    def __init__(self, store: JobStore, job_id: str, lease: Lease, interval_seconds: float) -> None:
        self._store = store
        self._job_id = job_id
        self._lease = lease
        self._interval = interval_seconds

    async def run(self) -> None:
        while not self._lease.lost and not self._lease.ended and self._lease.stop.reason is None:
            await asyncio.sleep(self._interval)
            try:
                state = await asyncio.to_thread(self._store.cancel_state, self._job_id)
            except Exception as error:  # a missed poll only delays the cancel to the next one
                logger.warning("cancel poll failed", extra={"job_id": self._job_id, "error": str(error)})
                continue
            if state is None or state.attempt != self._lease.attempt:
                continue  # stale, or another attempt's: the lease decides about that
            if state.status.is_terminal:
                # Ended by someone else (the API canceled it while queued, or the dead-letter function
                # failed it), who told the subscribers: this attempt acts no more.
                await self._lease.fenced_out()
            elif state.cancel_requested:
                self._lease.stop.set("canceled")
