"""The runner's loop: long-poll SQS, claim, run, repeat; each message in its own error boundary."""

from __future__ import annotations

import asyncio
import contextlib
import time

from pydantic import ValidationError

from gpu_runner.cancel_hints import CancelHints
from gpu_runner.catalog import CatalogKeeper
from gpu_runner.cleanup import ComfyFolders
from gpu_runner.comfy import ComfyClient, ComfyUnavailable
from gpu_runner.fanout import WebSocketNotifier
from gpu_runner.faults import crash_if
from gpu_runner.job import TRANSIENT, JobRun, RunnerDeps, now_ms
from gpu_runner.lanes import Lanes
from gpu_runner.lease import lease_span_ms
from gpu_runner.log import logger
from gpu_runner.model_cache import model_cache_from_settings
from gpu_runner.notify import NoSubscribers, Notifier
from gpu_runner.orphans import job_when_it_lands
from gpu_runner.spot import INTERRUPTED, return_unclaimed, watch_for_notice
from gpu_runner.task_protection import TaskProtection
from gpu_runner.warmup import warm_up
from shared.aws.catalog import CatalogStore
from shared.aws.clients import AwsClients
from shared.aws.connections import ConnectionStore
from shared.aws.events import EventLog
from shared.aws.job_timings import JobTimingsWriter
from shared.aws.jobs import JobStore
from shared.aws.push import ConnectionPoster
from shared.aws.queue import JobQueue, ReceivedMessage
from shared.aws.storage import ArtifactStore
from shared.models import JobStatus
from shared.settings import RunnerSettings

COMFYUI_PROBE_SECONDS = 1.0


def _notifier(settings: RunnerSettings, clients: AwsClients, cancel_hints: CancelHints) -> Notifier:
    if not settings.websocket_management_url:
        return NoSubscribers()
    artifacts = ArtifactStore(clients.s3, settings.bucket_name)
    return WebSocketNotifier(
        ConnectionStore(clients.dynamodb, settings.connections_table_name),
        ConnectionPoster(settings.websocket_management_url, session=clients.session),
        lambda key: artifacts.presign_get(key, settings.output_url_ttl_seconds),
        cancel_hints,
    )


class Runner:
    def __init__(
        self, settings: RunnerSettings, clients: AwsClients | None = None, notifier: Notifier | None = None
    ):
        clients = clients or AwsClients()
        self.settings = settings
        self.comfy = ComfyClient(
            settings.comfyui_url, request_timeout=settings.comfyui_request_timeout_seconds
        )
        # The fan-out's subscriber lookups also show a cancel mark: the cancel watch polls less.
        cancel_hints = CancelHints()
        self.deps = RunnerDeps(
            settings=settings,
            store=JobStore(clients.dynamodb, settings.jobs_table_name),
            queue=JobQueue(clients.sqs, settings.jobs_queue_url),
            artifacts=ArtifactStore(clients.s3, settings.bucket_name),
            comfy=self.comfy,
            notifier=notifier or _notifier(settings, clients, cancel_hints),
            output_classes=set(),
            folders=ComfyFolders.from_settings(settings),
            event_log=EventLog(clients.dynamodb, settings.job_events_table_name),
            models=model_cache_from_settings(settings, clients),
            timings=JobTimingsWriter(clients.dynamodb, settings.jobs_table_name),
            cancel_hints=cancel_hints,
        )
        self._catalog = CatalogKeeper(
            self.comfy,
            CatalogStore(clients.s3, settings.bucket_name),
            self.deps.folders,
            self.deps.models.root if self.deps.models else None,
        )
        self.lanes = Lanes(
            self.deps.queue,
            JobQueue(clients.sqs, settings.priority_queue_url) if settings.priority_queue_url else None,
            settings.priority_poll_wait_seconds,
        )
        self._warm = not settings.warmup_workflow
        if not self.deps.folders:
            logger.warning("ComfyUI's folders are not set: jobs' files stay on its disk after they end")
        self._stopping = asyncio.Event()
        # The instance is going away (a Spot notice): whatever comes in is sent back fresh, not released.
        self._interrupted = False
        self._in_hand: dict[str, JobRun] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.jobs_handled = 0
        self.protection = TaskProtection(
            settings.ecs_agent_uri, settings.task_protection_minutes, lambda: bool(self._in_hand)
        )
        # A new socket may be a restarted ComfyUI with other custom nodes: read what it offers at once,
        # so that a job in flight already sees its output node types (and again before each claim).
        self._catalog_lock = asyncio.Lock()
        self.comfy.on_connect = self._refresh_catalog

    @property
    def capacity(self) -> int:
        """The job running plus the ones prefetched into ComfyUI's queue behind it."""
        return 1 + self.settings.prefetch

    def request_stop(self) -> None:
        """SIGTERM: receive no more; jobs in hand finish, or are released when the stop timeout ends.

        On Spot (``release_on_sigterm``) SIGTERM means the instance is going: hand the jobs back now."""
        if self.settings.release_on_sigterm:
            self.interrupted("SIGTERM on a Spot instance")
            return
        if self._stopping.is_set():
            return
        logger.info("stop requested", extra={"stop_timeout_seconds": self.settings.stop_timeout_seconds})
        self._stopping.set()
        loop = asyncio.get_running_loop()
        loop.call_later(self.settings.stop_timeout_seconds, self._release_in_hand)

    def interrupted(self, why: str) -> None:
        """The instance is going away: take nothing more, and hand every job in hand back at once."""
        logger.warning(
            "interrupted: handing the jobs in hand back", extra={"why": why, "jobs": len(self._in_hand)}
        )
        self._interrupted = True
        self._stopping.set()
        for run in self._in_hand.values():
            run.stop.set(INTERRUPTED)

    def _release_in_hand(self) -> None:
        for run in self._in_hand.values():
            run.stop.set("shutdown")

    async def run(self) -> None:
        await self.comfy.start()
        spot_watch = None
        if self.settings.spot_metadata_url:
            spot_watch = asyncio.create_task(
                watch_for_notice(
                    self.settings.spot_metadata_url,
                    self.settings.spot_poll_seconds,
                    self._stopping,
                    self.interrupted,
                ),
                name="spot-notice",
            )
        try:
            while not self._stopping.is_set():
                if len(self._tasks) >= self.capacity:
                    await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
                    continue
                if not await self._wait_for_comfyui():
                    continue
                if not self._warm:
                    await self._warm_up()
                received = await asyncio.to_thread(
                    self.lanes.receive,
                    self.settings.receive_wait_seconds,
                    self.settings.visibility_timeout_seconds,
                )
                for item in received:
                    await self._take(item.message, item.queue)
            if self._tasks:
                await asyncio.wait(self._tasks)
        finally:
            if spot_watch is not None:
                spot_watch.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await spot_watch
            await self.protection.close()
            await self.deps.notifier.close()
            await self.comfy.close()

    async def _take(self, message: ReceivedMessage, queue: JobQueue | None = None) -> None:
        """Claims the message's job, then runs it in the background so the next one can be prefetched."""
        run = await self.claim(message, queue)
        if run is None:
            self.jobs_handled += 1
            return
        self._in_hand[run.job.job_id] = run
        if self._interrupted:
            # Claimed while the notice came: it goes back like the others.
            run.stop.set(INTERRUPTED)
        await self.protection.sync()  # protected before the job starts
        task = asyncio.create_task(self._execute(run), name=f"job-{run.job.job_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _execute(self, run: JobRun) -> None:
        started = time.monotonic()
        try:
            await run.execute()
        except Exception:
            logger.exception("job failed in the runner", extra={"job_id": run.job.job_id})
        finally:
            self._in_hand.pop(run.job.job_id, None)
            self.jobs_handled += 1
            await self.protection.sync()  # off once no job is left in hand
        logger.debug(
            "done with job", extra={"job_id": run.job.job_id, "seconds": round(time.monotonic() - started, 3)}
        )

    async def _wait_for_comfyui(self) -> bool:
        """Claim nothing while ComfyUI does not answer: a job taken now would only fail."""
        while not self._stopping.is_set():
            try:
                await self.comfy.system_stats()
            except ComfyUnavailable as error:
                logger.warning("ComfyUI is not answering; waiting", extra={"error": str(error)})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), COMFYUI_PROBE_SECONDS)
                continue
            # Frames for a client with no socket are dropped: never submit before it is open.
            if not await self.comfy.wait_connected(5.0):
                return False
            await self._refresh_catalog()
            # Without ComfyUI's file inputs a job's inputs cannot be checked: claim nothing yet.
            if self._catalog.ready:
                return True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), COMFYUI_PROBE_SECONDS)
        return False

    async def _warm_up(self) -> None:
        """Once, before the first claim: a failure is logged and the runner serves jobs all the same."""
        self._warm = True
        await warm_up(
            self.settings.warmup_workflow,
            self.comfy,
            self.deps.catalog,
            self.deps.models,
            self.deps.folders,
            self.settings.max_run_seconds,
        )

    async def _refresh_catalog(self) -> None:
        async with self._catalog_lock:
            self.deps.catalog = await self._catalog.refresh()
            self.deps.output_classes = set(self.deps.catalog.output_classes)

    async def claim(self, message: ReceivedMessage, queue: JobQueue | None = None) -> JobRun | None:
        """One message, whatever it holds, never takes the loop down with it. None: nothing to run."""
        job_id = "unknown"
        try:
            job_id = message.parse().job_id
            return await self._claim(message, job_id, queue or self.deps.queue)
        except ValidationError:
            # Left alone it comes back until maxReceiveCount sends it to the DLQ, where it is logged.
            logger.error(
                "malformed message", extra={"message_id": message.message_id, "body": message.body[:500]}
            )
        except TRANSIENT as error:
            logger.warning("transient failure before the run", extra={"job_id": job_id, "error": str(error)})
        except Exception:
            logger.exception("could not take the job", extra={"job_id": job_id})
        return None

    async def _claim(self, message: ReceivedMessage, job_id: str, queue: JobQueue) -> JobRun | None:
        store = self.deps.store
        if self._interrupted:
            await return_unclaimed(store, queue, message, job_id)
            return None
        if self._stopping.is_set():
            await asyncio.to_thread(queue.change_visibility, message.receipt_handle, 0)
            return None
        job = await asyncio.to_thread(store.get, job_id)
        if job is None:
            # Its put may still be on its way, or never come (gpu_runner/orphans.py).
            job = await job_when_it_lands(store, queue, message, job_id)
            if job is None:
                return None
        if job.status.is_terminal:
            logger.info("nothing to do for this message", extra={"job_id": job_id, "status": job.status})
            await asyncio.to_thread(queue.delete, message.receipt_handle)
            return None
        now = now_ms()
        lease_until = now + lease_span_ms(self.settings.visibility_timeout_seconds)
        claimed = await asyncio.to_thread(store.claim, job_id, self.settings.runner_id, now, lease_until)
        if claimed is None:
            # Another runner holds a live lease: this is a duplicate delivery. Never run the GPU twice.
            logger.info("duplicate delivery of a leased job; dropping it", extra={"job_id": job_id})
            await asyncio.to_thread(queue.delete, message.receipt_handle)
            return None
        crash_if(self.settings.crash_at_step, "after_claim")
        if claimed.status is JobStatus.QUEUED and claimed.deadline is not None and claimed.deadline < now:
            expired = await asyncio.to_thread(store.expire, job_id, claimed.attempt, now)
            if expired is not None:
                logger.info("expired in the queue", extra={"job_id": job_id})
                await self.deps.notifier.status(expired)
            await asyncio.to_thread(queue.delete, message.receipt_handle)
            return None
        # A job's one routine line is its "finished" (beside its EMF document); this one is for debugging.
        logger.debug(
            "claimed", extra={"job_id": job_id, "attempt": claimed.attempt, "receives": message.receive_count}
        )
        return JobRun(self.deps, message, claimed, queue)
