"""The heartbeat: keeps the SQS message invisible and the job's lease alive together, and hears cancels."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from gpu_runner.follow import StopRequest
from gpu_runner.log import logger
from shared.aws.jobs import JobStore
from shared.aws.queue import JobQueue
from shared.errors import ServiceUnavailable
from shared.models import JobStatus


def lease_span_ms(visibility_seconds: int) -> int:
    """The lease ends a little before the message reappears, so whoever receives it can claim it."""
    margin = min(5.0, visibility_seconds / 4)
    return int((visibility_seconds - margin) * 1000)


@dataclass
class Heartbeat:
    store: JobStore
    queue: JobQueue
    job_id: str
    attempt: int
    receipt_handle: str
    visibility_seconds: int
    stop: StopRequest

    @property
    def interval(self) -> float:
        return max(0.3, self.visibility_seconds / 3)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.beat()
            except ServiceUnavailable as error:
                # One missed beat is survivable: the lease outlives two more intervals.
                logger.warning("heartbeat failed", extra={"job_id": self.job_id, "cause": error.cause})
            except Exception:
                logger.exception("heartbeat error", extra={"job_id": self.job_id})

    async def beat(self) -> None:
        now_ms = int(time.time() * 1000)
        await asyncio.to_thread(self.queue.change_visibility, self.receipt_handle, self.visibility_seconds)
        job = await asyncio.to_thread(
            self.store.renew_lease,
            self.job_id,
            self.attempt,
            now_ms + lease_span_ms(self.visibility_seconds),
            now_ms,
        )
        if job is not None:
            if job.cancel_requested:
                self.stop.set("canceled")
            return
        current = await asyncio.to_thread(self.store.get, self.job_id)
        if current is not None and current.status is JobStatus.CANCELED:
            self.stop.set("canceled")
        else:
            self.stop.set("lost")
