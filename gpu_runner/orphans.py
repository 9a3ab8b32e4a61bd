"""A message whose job is not in the table (yet).

The API sends a job's message before it puts the job (functions/api/jobs_service.py), so a runner may
receive the message a moment before the item lands; and when the put fails after the send, the
message names a job that never comes. The first is waited for, the second dropped:

- the job is read again, strongly, at growing intervals over about two seconds: a put normally lands
  within milliseconds (an idle runner's long poll often hears of the message first);
- still missing, the message goes back with a delay and is looked at again later;
- missing once the message is older than ``ORPHAN_AFTER_SECONDS``, far longer than the API function
  that sent it may live (its timeout, 29 s), so that no put can still come: it is deleted and logged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from gpu_runner.log import logger
from shared.aws.jobs import JobStore
from shared.aws.queue import JobQueue, ReceivedMessage
from shared.models import Job

# Before each read again: the first soon, since the put is usually a few milliseconds behind.
LATE_READ_PAUSES_SECONDS = (0.02, 0.08, 0.3, 0.6, 1.0)
# The second look comes once the API function that sent the message has surely ended.
RECHECK_DELAY_SECONDS = 60
ORPHAN_AFTER_SECONDS = 15 * 60


async def job_when_it_lands(
    store: JobStore,
    queue: JobQueue,
    message: ReceivedMessage,
    job_id: str,
    *,
    pauses_s: tuple[float, ...] = LATE_READ_PAUSES_SECONDS,
    clock: Callable[[], float] = time.time,
) -> Job | None:
    """The job once its item is there; None when it is not, the message then given back or deleted."""
    for pause_s in pauses_s:
        await asyncio.sleep(pause_s)
        job = await asyncio.to_thread(store.get, job_id)
        if job is not None:
            return job
    now_ms = int(clock() * 1000)
    # Without SentTimestamp (never so on SQS) the message counts as new: it comes back, then goes.
    age_s = max(0, now_ms - (message.sent_at_ms or now_ms)) // 1000
    if age_s >= ORPHAN_AFTER_SECONDS:
        logger.warning(
            "dropping a message whose job never came (its submission failed after the send)",
            extra={"job_id": job_id, "message_id": message.message_id, "age_seconds": age_s},
        )
        await asyncio.to_thread(queue.delete, message.receipt_handle)
        return None
    delay = RECHECK_DELAY_SECONDS if age_s < RECHECK_DELAY_SECONDS else ORPHAN_AFTER_SECONDS - age_s + 1
    logger.info(
        "the message's job is not there yet; looking again later",
        extra={"job_id": job_id, "age_seconds": age_s, "delay_seconds": delay},
    )
    await asyncio.to_thread(queue.change_visibility, message.receipt_handle, delay)
    return None
