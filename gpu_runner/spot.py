"""Spot interruptions: hear the two-minute notice and hand the jobs in hand back at once.

EC2 announces a Spot interruption two minutes ahead in the instance metadata
(``/latest/meta-data/spot/instance-action``, 404 until then; read with an IMDSv2 token), and ECS, with
Spot draining on, stops the instance's tasks (SIGTERM). Either way the runner stops taking jobs and
interrupts the prompts in hand; each job is released (its lease cleared) and sent again as a fresh
message, whose receive count starts at zero: an interruption is not the job's fault and does not use
its failure budget (``maxReceiveCount``), and another runner takes it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

import aiohttp
from botocore.exceptions import BotoCoreError, ClientError

from gpu_runner.log import logger
from shared.errors import ServiceUnavailable

if TYPE_CHECKING:
    from gpu_runner.job import JobRun
    from shared.aws.jobs import JobStore
    from shared.aws.queue import JobQueue, ReceivedMessage

TOKEN_PATH = "/latest/api/token"  # noqa: S105 (a path, not a secret)
INSTANCE_ACTION_PATH = "/latest/meta-data/spot/instance-action"
TOKEN_TTL_SECONDS = 21600
INTERRUPTED = "interrupted"


async def instance_action(session: aiohttp.ClientSession, base_url: str) -> dict[str, str] | None:
    """The pending interruption ({"action": "terminate", "time": ...}), or None while there is none."""
    async with session.put(
        base_url + TOKEN_PATH, headers={"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL_SECONDS)}
    ) as answer:
        answer.raise_for_status()
        token = await answer.text()
    async with session.get(
        base_url + INSTANCE_ACTION_PATH, headers={"X-aws-ec2-metadata-token": token}
    ) as answer:
        if answer.status == 404:
            return None
        answer.raise_for_status()
        notice = await answer.json(content_type=None)
        return dict(notice) if isinstance(notice, dict) else {"action": str(notice)}


async def watch_for_notice(
    base_url: str, poll_seconds: float, stopping: asyncio.Event, on_notice: Callable[[str], None]
) -> None:
    """Poll the metadata service until a notice comes (then call ``on_notice`` once) or the runner stops."""
    timeout = aiohttp.ClientTimeout(total=2)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while not stopping.is_set():
            try:
                notice = await instance_action(session, base_url.rstrip("/"))
            except (aiohttp.ClientError, TimeoutError) as error:
                logger.warning("instance metadata did not answer", extra={"error": str(error)})
                notice = None
            if notice is not None:
                logger.warning("spot interruption notice", extra={"notice": notice})
                on_notice(f"spot notice: {notice.get('action', '?')} at {notice.get('time', '?')}")
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), poll_seconds)


async def return_unclaimed(store: JobStore, queue: JobQueue, message: ReceivedMessage, job_id: str) -> None:
    """A message a poll brought in after the notice: sent again fresh (its receive not counted), then
    dropped; a message for a job that is over is only dropped."""
    job = await asyncio.to_thread(store.get, job_id)
    if job is None:
        # Its put may still be on its way: given back as it is, for another runner to look for it
        # (gpu_runner/orphans.py). Deleted, it would leave the job without a message.
        await asyncio.to_thread(queue.change_visibility, message.receipt_handle, 0)
        return
    if not job.status.is_terminal:
        await asyncio.to_thread(queue.send_job, job)
    await asyncio.to_thread(queue.delete, message.receipt_handle)


async def hand_back(run: JobRun) -> None:
    """Release the attempt and send the job again as a new message; then drop the old one.

    Sent before deleted: if the instance dies in between, the old message returns by itself and the
    runner that claims it drops the second delivery (the job is then leased, or over).
    """
    deps, job = run.deps, run.job
    if not await run.lease.holds():
        return
    from gpu_runner.job import now_ms  # the floor below JobRun; imported late to avoid a cycle

    try:
        await asyncio.to_thread(deps.store.release, job.job_id, run.attempt, now_ms())
        await asyncio.to_thread(run.queue.send_job, job)
    except (ServiceUnavailable, ClientError, BotoCoreError) as error:
        # The message stays as it is and returns when its visibility ends: slower, and counted, but kept.
        logger.warning(
            "could not hand the job back; it returns by itself",
            extra={"job_id": job.job_id, "error": str(error)},
        )
        return
    with contextlib.suppress(ClientError, BotoCoreError):
        await asyncio.to_thread(run.queue.delete, run.message.receipt_handle)
    logger.info("handed back on interruption", extra={"job_id": job.job_id, "attempt": run.attempt})
