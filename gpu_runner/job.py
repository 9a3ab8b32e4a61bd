"""One attempt at one job: from a claimed job to exactly one terminal write, or a release."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from gpu_runner import job_metrics, spot
from gpu_runner.cancel_hints import CancelHints
from gpu_runner.cancel_watch import CancelWatch
from gpu_runner.cleanup import ComfyFolders, remove_job_files
from gpu_runner.comfy import ComfyClient, ComfyRejected, ComfyUnavailable
from gpu_runner.comfy_binary import SentImage
from gpu_runner.events import AttemptEvents
from gpu_runner.faults import crash_if
from gpu_runner.follow import OutcomeKind, PromptFollower, PromptOutcome, StopRequest
from gpu_runner.job_errors import execution_error, rejection_error
from gpu_runner.job_models import JobModels, make_models_local
from gpu_runner.lease import AttemptLost, Lease
from gpu_runner.log import logger
from gpu_runner.model_cache import ModelCache
from gpu_runner.notify import Notifier
from gpu_runner.outputs import OutputUploader, socket_outputs
from gpu_runner.previews import LivePreviews
from gpu_runner.progress import ProgressTracker, nodes_that_run
from gpu_runner.staging import InputRejected, stage_job
from gpu_runner.timings import AttemptClock
from shared.aws.events import EventLog
from shared.aws.job_timings import JobTimingsWriter
from shared.aws.jobs import JobStore
from shared.aws.queue import JobQueue, ReceivedMessage
from shared.aws.storage import ArtifactStore
from shared.errors import ServiceUnavailable
from shared.file_inputs import FileInputCatalog
from shared.models import ErrorCode, Job, JobError, JobStatus, OutputFile
from shared.names import attempt_outputs_prefix
from shared.settings import RunnerSettings

PROMPT_NAMESPACE = uuid.UUID("6f1c1a5e-3b5e-4c61-9a57-0c4f2a3e9b10")
TRANSIENT = (ComfyUnavailable, ServiceUnavailable, ClientError, BotoCoreError)


def now_ms() -> int:
    return int(time.time() * 1000)


def prompt_id_for(job_id: str, attempt: int) -> str:
    """Deterministic, so the prompt of an attempt can be found in ComfyUI's history after a restart."""
    return str(uuid.uuid5(PROMPT_NAMESPACE, f"{job_id}:{attempt}"))


@dataclass
class RunnerDeps:
    settings: RunnerSettings
    store: JobStore
    queue: JobQueue
    artifacts: ArtifactStore
    comfy: ComfyClient
    notifier: Notifier
    output_classes: set[str]
    folders: ComfyFolders = field(default_factory=lambda: ComfyFolders({}))
    # What the connected ComfyUI reads from its folders (file inputs, output nodes).
    catalog: FileInputCatalog = field(default_factory=FileInputCatalog)
    # Each job's event log for late readers; None: only live subscribers hear of events.
    event_log: EventLog | None = None
    # Where the models a job names are made local; None: ComfyUI has only what its image has.
    models: ModelCache | None = None
    timings: JobTimingsWriter | None = None
    # What the notifier's subscriber lookups tell the cancel watch (shared with the notifier).
    cancel_hints: CancelHints = field(default_factory=CancelHints)


def backoff_seconds(receive_count: int) -> int:
    return int(min(300, 2 ** min(receive_count, 9)))


class JobRun:
    def __init__(
        self, deps: RunnerDeps, message: ReceivedMessage, job: Job, queue: JobQueue | None = None
    ) -> None:
        self.deps = deps
        self.message = message
        # The lane the message came from: its receipt handle is that queue's.
        self.queue = queue or deps.queue
        self.job = job
        self.attempt = job.attempt
        self.prompt_id = prompt_id_for(job.job_id, job.attempt)
        self.stop = StopRequest()
        settings = deps.settings
        # Every side effect of this attempt asks the lease first (see gpu_runner/lease.py).
        self.lease = Lease(
            deps.store,
            self.queue,
            job.job_id,
            job.attempt,
            message.receipt_handle,
            settings.visibility_timeout_seconds,
            job.lease_until or 0,
            self.stop,
        )
        self.events = AttemptEvents(
            deps.event_log, job, self.lease, progress_after_seconds=deps.settings.progress_write_seconds
        )
        self.previews = LivePreviews(job.job_id, deps.notifier, self.events, self.lease)
        self._tracker: ProgressTracker | None = None
        # The first progress write comes one interval into the attempt: a short job writes none.
        self._last_progress_write = time.monotonic()
        self._progress_write: asyncio.Task[Any] | None = None
        # The graph as sent to ComfyUI (the job item has none when its workflow lives in S3).
        self._graph: dict[str, Any] = {}
        self._timeout: asyncio.TimerHandle | None = None
        self._outcome: PromptOutcome | None = None
        # The attempt's own folder in ComfyUI's input and output folders, once staged.
        self._job_folder = ""
        self._models = JobModels()
        self.clock = AttemptClock(job, settings.gpu_price_per_hour)

    def _log(self, message: str, *, debug: bool = False, **extra: Any) -> None:
        # A job's INFO lines are bounded (finished, a model fetch, what goes wrong): each is billed as logs.
        log = logger.debug if debug else logger.info
        log(message, extra={"job_id": self.job.job_id, "attempt": self.attempt, **extra})

    async def execute(self) -> None:
        watch = CancelWatch(
            self.deps.store,
            self.job.job_id,
            self.lease,
            self.deps.settings.cancel_poll_seconds,
            self.deps.cancel_hints,
        )
        beating = asyncio.create_task(self.lease.run(), name=f"heartbeat-{self.job.job_id}")
        watching = asyncio.create_task(watch.run(), name=f"cancel-watch-{self.job.job_id}")
        try:
            # Nested, so that a store fault while failing the job also releases it for a retry.
            try:
                await self._run()
            except ComfyRejected as rejected:
                await self._fail(rejection_error(rejected, self._graph))
            except InputRejected as rejected:
                await self._fail(
                    JobError(code=ErrorCode.INPUT_ERROR, message=str(rejected), node_id=rejected.node_id)
                )
        except TRANSIENT as error:
            logger.warning(
                "transient failure; releasing the job", extra={"job_id": self.job.job_id, "error": str(error)}
            )
            await self.release(backoff_seconds(self.message.receive_count))
        except AttemptLost:
            self._log("lease lost; this attempt writes nothing more")
        finally:
            await self.previews.close()
            await self.events.drain()
            self._models.release()
            beating.cancel()
            watching.cancel()
            if self._timeout:
                self._timeout.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(beating, watching)
            if self._job_folder and self.deps.folders:
                produced = self._outcome.outputs if self._outcome else {}
                await asyncio.to_thread(remove_job_files, self.deps.folders, self._job_folder, produced)

    async def _run(self) -> None:
        workflow = await self._load_workflow()
        self._models = await make_models_local(self.deps.models, workflow, self.deps.catalog)
        await self._record_models_time(self._models.milliseconds)
        staged = await stage_job(
            workflow,
            owner=self.job.owner,
            catalog=self.deps.catalog,
            artifacts=self.deps.artifacts,
            comfy=self.deps.comfy,
            upload_max_bytes=self.deps.settings.upload_max_bytes,
        )
        graph = self._graph = staged.graph
        self._job_folder = staged.folder
        # Percent never goes back for the life of the job: a later attempt starts from the stored one.
        self._tracker = ProgressTracker(nodes_that_run(graph, self.deps.output_classes), self.job.progress)
        async with self.deps.comfy.listen(self.prompt_id) as frames:
            await self.deps.comfy.submit(self.prompt_id, graph)
            self._log("prompt queued in ComfyUI", debug=True, prompt_id=self.prompt_id)
            follower = PromptFollower(
                self.deps.comfy,
                self.prompt_id,
                frames,
                self,
                self.stop,
                self.deps.settings.comfyui_silence_seconds,
            )
            outcome = await follower.run()
        await self.previews.close()
        await self._conclude(outcome)

    async def _load_workflow(self) -> dict[str, Any]:
        if self.job.workflow is not None:
            return self.job.workflow
        assert self.job.workflow_s3_key, "a job has its workflow inline or in S3"
        data = await asyncio.to_thread(self.deps.artifacts.get_bytes, self.job.workflow_s3_key)
        return dict(json.loads(data))

    async def _record_models_time(self, milliseconds: int) -> None:
        # The terminal write sets the whole timings map: it carries this stage. Only a fetch (minutes
        # for a checkpoint) is also written now, so that it shows while the job runs and outlives an
        # attempt that dies; models already local cost the job no write of their own.
        self.clock.models_ms = milliseconds
        fetched = self._models.fetched
        if not fetched or self.deps.timings is None or not await self.lease.holds():
            return
        self._log("models fetched", ms=milliseconds, fetched=[str(m.ref) for m in fetched])
        with contextlib.suppress(ServiceUnavailable):  # a lost timing costs the job nothing else
            await asyncio.to_thread(
                self.deps.timings.record, self.job.job_id, self.attempt, "models_ms", milliseconds
            )

    # -- PromptObserver ---------------------------------------------------------------------------

    async def started(self, timestamp_ms: int | None) -> None:
        crash_if(self.deps.settings.crash_at_step, "mid_run")
        loop = asyncio.get_running_loop()
        self._timeout = loop.call_later(self.deps.settings.max_run_seconds, self.stop.set, "timeout")
        await self.lease.ensure()
        job = await asyncio.to_thread(
            self.deps.store.mark_running, self.job.job_id, self.attempt, now_ms(), self.prompt_id
        )
        if job is None:
            await self.lease.fenced_out()
            return
        claimed, self.job = self.job, job
        self._log("running", debug=True)
        self.events.state_changed(job, before=claimed)
        await self.deps.notifier.status(job, self.lease)

    async def cached(self, nodes: list[str]) -> None:
        if self._tracker:
            self._on_progress(self._tracker.cached(nodes))

    async def executing(self, node_id: str) -> None:
        self.previews.step(node_id, 0, None)
        if self._tracker:
            self._on_progress(self._tracker.executing(node_id))
            await self._tell_progress(node_id, 0, 1)

    async def progress(self, node_id: str, value: float, maximum: float) -> None:
        self.previews.step(node_id, value, maximum)
        if self._tracker:
            self._on_progress(self._tracker.progress(node_id, value, maximum))
            await self._tell_progress(node_id, value, maximum)

    async def _tell_progress(self, node_id: str, value: float, maximum: float) -> None:
        node_type = self._node_type(node_id)
        seq, milestone = self.events.progress(self.job, node_id, node_type, value, maximum)
        await self.deps.notifier.progress(
            self.job, node_id, node_type, value, maximum, self.lease, seq=seq, keep=milestone
        )

    async def sent_image(self, image: SentImage) -> bool:
        """A live preview is taken (True); an output node's image is left to the outputs (False)."""
        if self._node_type(image.node_id or "") in self.deps.output_classes:
            return False
        self.previews.offer(image)
        return True

    async def executed(self, node_id: str) -> None:
        if self._tracker:
            self._on_progress(self._tracker.executed(node_id))

    def _node_type(self, node_id: str) -> str | None:
        node = self._graph.get(node_id)
        return str(node.get("class_type")) if isinstance(node, dict) else None

    def _on_progress(self, percent: float) -> None:
        """Progress goes to DynamoDB at most every ``progress_write_seconds``, off the frame loop: the
        WebSocket carries it live, the stored percent is for REST readers and a later attempt's start."""
        self.job.progress = percent
        now = time.monotonic()
        busy = self._progress_write is not None and not self._progress_write.done()
        if busy or now - self._last_progress_write < self.deps.settings.progress_write_seconds:
            return
        self._last_progress_write = now
        self._progress_write = asyncio.create_task(self._write_progress(percent))
        self._progress_write.add_done_callback(self._progress_written)

    async def _write_progress(self, percent: float) -> None:
        if await self.lease.holds():
            await asyncio.to_thread(
                self.deps.store.record_progress, self.job.job_id, self.attempt, percent, now_ms()
            )

    def _progress_written(self, task: asyncio.Task[Any]) -> None:
        # A lost progress write costs nothing but a stale percent; the next one, a second on, retries.
        if not task.cancelled() and task.exception() is not None:
            logger.warning(
                "progress write failed", extra={"job_id": self.job.job_id, "error": str(task.exception())}
            )

    # -- endings --------------------------------------------------------------------------------

    async def _conclude(self, outcome: PromptOutcome) -> None:
        self._outcome = outcome
        self.clock.executed(outcome.started_ms, outcome.finished_ms)
        reason = self.stop.reason
        if self.lease.lost:
            self._log("lease lost or job ended elsewhere; leaving it", reason=reason)
            return
        if outcome.kind is OutcomeKind.SUCCESS:
            await self._succeed(outcome)
        elif outcome.kind is OutcomeKind.ERROR:
            await self._fail(execution_error(outcome.error or {}, self.job.job_id))
        elif reason == "canceled":
            await self._finish(
                JobStatus.CANCELED, error=JobError(code=ErrorCode.CANCELED, message="canceled")
            )
        elif reason == "timeout":
            limit = self.deps.settings.max_run_seconds
            await self._fail(JobError(code=ErrorCode.TIMEOUT, message=f"the job ran longer than {limit} s"))
        elif reason == "shutdown":
            await self.release(0)
        elif reason == spot.INTERRUPTED:
            await spot.hand_back(self)
        else:
            # Interrupted by someone else, or ComfyUI lost the prompt (it restarted): try again.
            self._log("prompt ended without a result; releasing", outcome=outcome.kind.value)
            await self.release(backoff_seconds(self.message.receive_count))

    async def _succeed(self, outcome: PromptOutcome) -> None:
        entry = await self.deps.comfy.history(self.prompt_id)
        produced = (entry or {}).get("outputs") or outcome.outputs
        sent = socket_outputs(
            outcome.sent_images, produced, self._graph, self.deps.output_classes, outcome.frames_lost
        )
        uploader = OutputUploader(self.deps.comfy, self.deps.artifacts, self.lease.ensure)
        try:
            await self._clear_earlier_attempts()
            self.clock.upload_started()
            outputs = await uploader.upload(self.job.owner, self.job.job_id, self.attempt, produced, sent)
            self.clock.upload_finished()
        except FileNotFoundError as missing:
            # ComfyUI named a file it cannot serve: running the prompt again would name it again.
            # Anything else (S3 or ComfyUI unreachable) is transient and releases the job for a retry.
            await self._fail(
                JobError(code=ErrorCode.OUTPUT_ERROR, message=f"could not fetch an output: {missing}")
            )
            return
        crash_if(self.deps.settings.crash_at_step, "after_upload")
        if await self._finish(JobStatus.SUCCEEDED, outputs=outputs):
            return
        if not self.lease.lost:
            # Refused without losing the job: only this attempt's own keys, named by nothing, go.
            await self._discard(outputs)
            if self.stop.reason == "canceled" or await self._cancel_was_requested():
                # A cancel asked for before the outputs were recorded wins over them.
                await self._finish(
                    JobStatus.CANCELED, error=JobError(code=ErrorCode.CANCELED, message="canceled")
                )

    async def _cancel_was_requested(self) -> bool:
        current = await asyncio.to_thread(self.deps.store.get, self.job.job_id)
        return current is not None and current.attempt == self.attempt and current.cancel_requested

    async def _clear_earlier_attempts(self) -> None:
        """An earlier attempt may have died between its upload and its terminal write; its objects are
        named by no job, and only the holder of the lease, whose own terminal write is still to come,
        removes them. What a stalled attempt still writes afterwards expires with the bucket's rule."""
        for earlier in range(1, self.attempt):
            await self.lease.ensure()
            prefix = attempt_outputs_prefix(self.job.owner, self.job.job_id, earlier)
            await asyncio.to_thread(self.deps.artifacts.delete_prefix, prefix)

    async def _fail(self, error: JobError) -> None:
        await self._finish(JobStatus.FAILED, error=error)

    async def _finish(
        self, status: JobStatus, *, outputs: list[OutputFile] | None = None, error: JobError | None = None
    ) -> bool:
        await self.lease.ensure()
        job = await asyncio.to_thread(
            self.deps.store.finish,
            self.job.job_id,
            self.attempt,
            status,
            now_ms(),
            outputs=outputs,
            error=error,
            cost=self.clock.result(),
        )
        if job is None:
            current = await asyncio.to_thread(self.deps.store.get, self.job.job_id)
            if current is None or current.attempt != self.attempt:
                await self.lease.fenced_out()
            elif current.status.is_terminal:
                # Someone else ended it first (a cancel of the queued job): the message is done with.
                self._log("job already ended elsewhere", status=current.status.value)
                await asyncio.to_thread(self.queue.delete, self.message.receipt_handle)
            return False
        self.lease.made_terminal_write()
        self.events.state_changed(job)
        self.job = job
        self._log("finished", status=status.value, outputs=len(job.outputs))
        job_metrics.emit(job, self._outcome)
        crash_if(self.deps.settings.crash_at_step, "after_finish")
        await asyncio.to_thread(self.queue.delete, self.message.receipt_handle)
        await self.deps.notifier.status(job, self.lease)
        return True

    async def _discard(self, outputs: list[OutputFile]) -> None:
        for output in outputs:
            with contextlib.suppress(ClientError, BotoCoreError):
                await asyncio.to_thread(self.deps.artifacts.delete, output.key)

    async def release(self, visibility_seconds: int) -> None:
        """Clear the lease and let the message come back after ``visibility_seconds``."""
        if not await self.lease.holds():
            return
        with contextlib.suppress(*TRANSIENT):
            await asyncio.to_thread(self.deps.store.release, self.job.job_id, self.attempt, now_ms())
        with contextlib.suppress(ClientError, BotoCoreError):
            await asyncio.to_thread(
                self.queue.change_visibility, self.message.receipt_handle, visibility_seconds
            )
        self._log("released", visibility_seconds=visibility_seconds)
