"""An attempt's lease: the fence every side effect of the attempt goes through, and its heartbeat.

The lease is the job item's ``lease_until`` under the attempt number, kept alive with the SQS message's
visibility. A runner can stall (SIGSTOP, a paused VM, a long GC) past its lease while another runner
claims the job; when it wakes, nothing it had started may land. So before each side effect (an S3 put
or delete, a job write, a frame, a queue call) the attempt asks ``holds()``: within the lease that is a
clock comparison; past it, the lease is verified again (the message first, then a fenced write) before
anything else happens. An attempt that lost never verifies again and never writes anything.
"""

from __future__ import annotations

import asyncio
import time

from botocore.exceptions import ClientError

from gpu_runner.follow import StopRequest
from gpu_runner.log import logger
from shared.aws.jobs import JobStore
from shared.aws.queue import JobQueue
from shared.errors import ServiceUnavailable
from shared.models import JobStatus

# SQS refuses a visibility change with these when the receipt handle is no longer the message's
# current one: the message went back to the queue and may be in another runner's hands.
STALE_RECEIPT_CODES = frozenset(
    {"ReceiptHandleIsInvalid", "MessageNotInflight", "AWS.SimpleQueueService.MessageNotInflight"}
)
# Stop trusting the clock this long before the lease ends: the next side effect verifies first.
SAFETY_MS = 200


class AttemptLost(Exception):
    """The attempt no longer holds its job: it must stop and write nothing."""


def lease_span_ms(visibility_seconds: int) -> int:
    """The lease ends a little before the message reappears, so whoever receives it can claim it."""
    margin = min(5.0, visibility_seconds / 4)
    return int((visibility_seconds - margin) * 1000)


def _now_ms() -> int:
    return int(time.time() * 1000)


class Lease:
    def __init__(
        self,
        store: JobStore,
        queue: JobQueue,
        job_id: str,
        attempt: int,
        receipt_handle: str,
        visibility_seconds: int,
        lease_until_ms: int,
        stop: StopRequest,
    ) -> None:
        self.store = store
        self.queue = queue
        self.job_id = job_id
        self.attempt = attempt
        self.receipt_handle = receipt_handle
        self.visibility_seconds = visibility_seconds
        self.lease_until_ms = lease_until_ms
        self.stop = stop
        # Once set, the attempt acts no more: another attempt holds the job, or it ended elsewhere.
        self.lost = False
        # Set once this attempt made the job's terminal write: its last frame and cleanup may follow.
        self.ended = False
        self._verifying = asyncio.Lock()

    @property
    def interval(self) -> float:
        return max(0.3, self.visibility_seconds / 3)

    def made_terminal_write(self) -> None:
        """The job's terminal write was this attempt's: what any read raced to conclude is moot."""
        self.ended = True
        self.lost = False

    def _lose(self, why: str) -> None:
        if self.ended:
            return  # this attempt made the terminal write: a late read cannot take that back
        if not self.lost:
            logger.warning("lease lost", extra={"job_id": self.job_id, "attempt": self.attempt, "why": why})
        self.lost = True
        self.stop.set("lost")

    def act_before_ms(self) -> int | None:
        return None if self.ended else self.lease_until_ms - SAFETY_MS

    async def holds(self) -> bool:
        """Whether the attempt may still act; verifies the lease first when the clock says it may be over."""
        if self.lost:
            return False
        if self.ended or _now_ms() < self.lease_until_ms - SAFETY_MS:
            return True
        try:
            await self.beat()
        except Exception as error:
            # Unverified is not held: act on nothing until a beat gets through.
            logger.warning("could not verify the lease", extra={"job_id": self.job_id, "error": str(error)})
            return False
        return not self.lost and _now_ms() < self.lease_until_ms

    async def ensure(self) -> None:
        if not await self.holds():
            raise AttemptLost(f"attempt {self.attempt} of job {self.job_id} lost its lease")

    async def run(self) -> None:
        while not self.lost and not self.ended:
            await asyncio.sleep(self.interval)
            try:
                await self.beat()
            except ServiceUnavailable as error:
                # One missed beat is survivable: the lease outlives two more intervals.
                logger.warning("heartbeat failed", extra={"job_id": self.job_id, "cause": error.cause})
            except Exception:
                logger.exception("heartbeat error", extra={"job_id": self.job_id})

    async def beat(self) -> None:
        """Renews the lease and the message's invisibility together; learns of a loss or a cancel."""
        async with self._verifying:
            if self.lost or self.ended:
                return
            if _now_ms() >= self.lease_until_ms:
                # Past the lease the message may already be another runner's: ask SQS before writing.
                if await self._hide_message():
                    await self._renew()
            else:
                await self._renew()
                if not self.lost:
                    await self._hide_message()

    async def _hide_message(self) -> bool:
        try:
            await asyncio.to_thread(
                self.queue.change_visibility, self.receipt_handle, self.visibility_seconds
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in STALE_RECEIPT_CODES:
                self._lose(f"the message was handed out again ({code})")
                return False
            raise ServiceUnavailable("the queue refused a visibility change", cause=code) from error
        return True

    async def _renew(self) -> None:
        now_ms = _now_ms()
        until = now_ms + lease_span_ms(self.visibility_seconds)
        job = await asyncio.to_thread(self.store.renew_lease, self.job_id, self.attempt, until, now_ms)
        if job is not None:
            self.lease_until_ms = until
            if job.cancel_requested:
                self.stop.set("canceled")
            return
        await self.fenced_out()

    async def fenced_out(self) -> None:
        """A fenced write of this attempt was refused: learn why, and stop acting either way."""
        current = await asyncio.to_thread(self.store.get, self.job_id)
        if current is not None and current.attempt == self.attempt and current.status is JobStatus.CANCELED:
            # Canceled while queued: the API made the terminal write and told the subscribers.
            self.stop.set("canceled")
            self._lose("the job was canceled while queued")
        else:
            self._lose("the job item is fenced by another attempt")
