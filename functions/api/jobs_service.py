"""Submitting, reading and cancelling jobs: the API's logic, free of HTTP."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from functions.api.context import ApiContext
from functions.api.cursor import InvalidCursor, decode_cursor, encode_cursor
from functions.api.models_service import ModelsService
from functions.api.routing import Placement
from functions.api.schemas import JobRequest
from functions.api.webhooks_service import WebhooksService
from functions.observability import logger
from shared.aws.jobs import IdempotencyKeyTaken, IdempotencyRecord
from shared.errors import (
    FieldError,
    IdempotencyKeyReused,
    InvalidRequest,
    JobAlreadyFinished,
    JobNotFound,
    ServiceUnavailable,
    TooManyJobsInFlight,
)
from shared.file_inputs import file_input_errors
from shared.models import Job, JobStatus
from shared.names import ENQUEUE_PENDING_VALUE, input_key, workflow_key
from shared.notify import push_status
from shared.pools import DEFAULT_POOL
from shared.templates import Template, UnknownTemplate, get_template
from shared.uploads import upload_id_of, upload_references
from shared.views import JobView, job_view
from shared.workflow import validate_workflow

JOB_RETENTION_SECONDS = 90 * 24 * 3600
# Prefer: wait reads the job first after this long, then backs off to at most the ceiling: a Lambda
# held for a minute costs the same whatever it does, but each read is billed.
WAIT_POLL_SECONDS = 0.25
WAIT_POLL_MAX_SECONDS = 2.0
# Without a configured secret a cursor is still bound to its owner, and a listing only reads its owner's jobs.
UNSIGNED = ("unsigned",)


@dataclass(frozen=True)
class SubmitOutcome:
    status_code: int
    body: dict[str, Any]
    job_id: str
    replayed: bool


def request_fingerprint(method: str, path: str, body: dict[str, Any]) -> str:
    """Equal for the same request whatever its JSON key order or spacing."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


class JobsService:
    def __init__(self, ctx: ApiContext) -> None:
        self._ctx = ctx

    def submit(
        self, owner: str, request: JobRequest, idempotency_key: str | None, path: str
    ) -> SubmitOutcome:
        settings = self._ctx.settings
        params, template = None, None
        if request.template is not None:
            try:
                template = get_template(request.template)
            except UnknownTemplate as unknown:
                # A name in the body, not in the URL: the request is invalid, nothing is "not found".
                raise InvalidRequest(unknown.detail, unknown.errors) from None
            workflow, params = template.render(request.params or {})
        else:
            workflow = validate_workflow(request.workflow, max_nodes=settings.max_nodes)
        self._check_metadata(request.metadata)
        self._check_file_inputs(workflow, template)
        ModelsService(self._ctx).check(workflow, _param_pointers(template))
        self._check_uploads(owner, workflow, template)
        placement = self._place(owner, request, workflow, idempotency_key, path)
        if isinstance(placement, SubmitOutcome):
            return placement

        webhook = None
        if request.webhook is not None:
            webhook = WebhooksService(self._ctx).job_webhook(owner, request.webhook)

        now_ms = self._ctx.now_ms()
        job = Job(
            job_id=str(uuid.uuid4()),
            owner=owner,
            created_at=now_ms,
            updated_at=now_ms,
            deadline=now_ms + settings.queue_deadline_seconds * 1000,
            metadata=request.metadata,
            template=request.template,
            params=params,
            enqueue_pending=ENQUEUE_PENDING_VALUE,
            expires_at=now_ms // 1000 + JOB_RETENTION_SECONDS,
            pool=placement.pool,
            lane=placement.lane,
            in_flight=owner,
            webhook=webhook,
        )
        encoded = json.dumps(workflow, separators=(",", ":")).encode()
        if len(encoded) > settings.inline_workflow_max_bytes:
            # Written before the job that points at it, so no job can ever name a missing object; a
            # request whose job is not created (a replay, a refused key reuse) deletes it again below.
            job.workflow_s3_key = workflow_key(owner, job.job_id)
            self._ctx.artifacts.put_bytes(job.workflow_s3_key, encoded, "application/json")
        else:
            job.workflow = workflow

        body = self.view(job).model_dump(mode="json")
        record = None
        if idempotency_key is not None:
            record = IdempotencyRecord(
                key=f"{owner}#{idempotency_key}",
                request_hash=request_fingerprint("POST", path, request.model_dump(mode="json")),
                job_id=job.job_id,
                status_code=202,
                response=body,
                expires_at=now_ms // 1000 + settings.idempotency_ttl_seconds,
            )
        try:
            self._ctx.store.create(job, record, now_ms // 1000)
        except IdempotencyKeyTaken as taken:
            assert record is not None
            # The transaction was refused, so no job names this object: it belongs to nobody.
            if job.workflow_s3_key is not None:
                self._discard(job.workflow_s3_key)
            if taken.record.request_hash != record.request_hash:
                raise IdempotencyKeyReused(
                    f"Idempotency-Key {idempotency_key!r} was first used for a different request "
                    f"(job {taken.record.job_id}); use a new key for a new request.",
                    [FieldError("header:Idempotency-Key", "already used with a different body")],
                ) from None
            return SubmitOutcome(taken.record.status_code, taken.record.response, taken.record.job_id, True)

        self._enqueue(job)
        return SubmitOutcome(202, body, job.job_id, False)

    def _place(
        self, owner: str, request: JobRequest, workflow: dict[str, Any], key: str | None, path: str
    ) -> Placement | SubmitOutcome:
        """The job's pool and lane; a retry of a request already accepted replays even at the tier's limit."""
        router = self._ctx.router
        if router is None:
            if request.pool not in (None, DEFAULT_POOL):
                raise InvalidRequest(
                    f"pool {request.pool!r} does not exist; this deployment has one pool, {DEFAULT_POOL!r}",
                    [FieldError("/pool", "no such pool")],
                )
            return Placement(None, None)
        try:
            return router.place(owner, pool=request.pool, template=request.template, workflow=workflow)
        except TooManyJobsInFlight:
            if key is not None:
                first = self._ctx.store.get_idempotency(f"{owner}#{key}", self._ctx.now_ms() // 1000)
                fingerprint = request_fingerprint("POST", path, request.model_dump(mode="json"))
                if first is not None and first.request_hash == fingerprint:
                    return SubmitOutcome(first.status_code, first.response, first.job_id, True)
            raise

    def _discard(self, key: str) -> None:
        try:
            self._ctx.artifacts.delete(key)
        except (ClientError, BotoCoreError) as error:
            # The bucket's lifecycle rule for workflows removes it later; the caller's answer stands.
            logger.warning("could not delete an unused workflow", extra={"key": key, "cause": str(error)})

    def _enqueue(self, job: Job) -> None:
        """Send the message; if that fails the job keeps its pending mark and the sweeper sends it."""
        job_id = job.job_id
        try:
            self._ctx.queue.send_job(job)
        except ServiceUnavailable as error:
            logger.warning(
                "enqueue failed; the sweeper will re-send", extra={"job_id": job_id, "cause": error.cause}
            )
            return
        try:
            self._ctx.store.clear_enqueue_pending(job_id)
        except ServiceUnavailable:
            # Harmless: the sweeper sends a second message, and a runner drops the duplicate.
            logger.warning("could not clear the enqueue mark", extra={"job_id": job_id})

    def _check_metadata(self, metadata: dict[str, Any] | None) -> None:
        if metadata is None:
            return
        # UTF-8 bytes, as stored: "é" is two bytes, not the six of its \u escape.
        size = len(json.dumps(metadata, separators=(",", ":"), ensure_ascii=False).encode())
        limit = self._ctx.settings.max_metadata_bytes
        if size > limit:
            raise InvalidRequest(
                f"metadata is {size} bytes as JSON; at most {limit} are allowed",
                [FieldError("/metadata", f"{size} bytes is more than the limit of {limit}")],
            )

    def _check_file_inputs(self, workflow: dict[str, Any], template: Template | None) -> None:
        """A file input names only this job's upload:// objects: ComfyUI's folders hold other tenants' files.

        Without a catalog (no runner has published one yet) the runner checks before it submits.
        """
        catalog = self._ctx.catalog.get() if self._ctx.catalog is not None else None
        if catalog is None:
            return
        errors = file_input_errors(workflow, catalog, _param_pointers(template))
        if errors:
            raise InvalidRequest(
                f"The workflow names {len(errors)} file(s) it may not read: {errors[0].message}", errors
            )

    def _check_uploads(self, owner: str, workflow: dict[str, Any], template: Template | None) -> None:
        """Every upload:// input must name an upload of this owner that has arrived."""
        errors = []
        pointers = _param_pointers(template)
        for node_id, name, ref in upload_references(workflow):
            pointer = pointers.get((node_id, name), f"/workflow/{node_id}/inputs/{name}")
            upload_id = upload_id_of(ref)
            if upload_id is None:
                errors.append(FieldError(pointer, f"{ref!r} is not a valid upload reference", node_id, name))
            elif not self._ctx.artifacts.exists(input_key(owner, upload_id)):
                errors.append(
                    FieldError(
                        pointer, f"upload {upload_id!r} does not exist or has not been PUT yet", node_id, name
                    )
                )
        if errors:
            raise InvalidRequest(
                f"The job names {len(errors)} upload(s) it cannot use: {errors[0].message}", errors
            )

    def list(
        self, owner: str, status: JobStatus | None, limit: int, cursor: str | None
    ) -> tuple[list[Job], str | None]:
        signing, filter_ = self._ctx.signing, status.value if status else None
        start = None
        if cursor:
            given = cursor
            start = signing.verify(
                lambda accepted: decode_cursor(accepted or UNSIGNED, owner, filter_, given), InvalidCursor
            )
        jobs, last = self._ctx.store.list_by_owner(owner, limit, status, start)
        secret = signing.keys().current or UNSIGNED[0]
        next_cursor = encode_cursor(secret, owner, filter_, last) if last else None
        return jobs, next_cursor

    def wait(self, owner: str, job_id: str, seconds: float) -> Job:
        """The job as soon as it is terminal, or as it is when ``seconds`` have passed.

        The polls in between read eventually consistently (half the price): states only move forward,
        so a stale read can only be an earlier state, and the answer is read strongly at the end."""
        deadline = self._ctx.clock() + seconds
        pause = WAIT_POLL_SECONDS
        consistent = True
        while True:
            job = self.get(owner, job_id, consistent=consistent)
            if job.status.is_terminal:
                return job
            if self._ctx.clock() >= deadline:
                return job if consistent else self.get(owner, job_id)
            consistent = False
            time.sleep(min(pause, max(0.0, deadline - self._ctx.clock())))
            pause = min(pause * 2, WAIT_POLL_MAX_SECONDS)

    def get(self, owner: str, job_id: str, consistent: bool = True) -> Job:
        job = self._ctx.store.get(job_id, consistent=consistent)
        # Another owner's job is "not found", never "forbidden": that would confirm it exists.
        if job is None or job.owner != owner:
            raise JobNotFound(f"There is no job {job_id!r} for this API key.")
        return job

    def cancel(self, owner: str, job_id: str) -> Job:
        job = self.get(owner, job_id)
        if job.status.is_terminal:
            raise JobAlreadyFinished(f"Job {job_id} is already {job.status.value}; it cannot be canceled.")
        now_ms = self._ctx.now_ms()
        if job.status is JobStatus.QUEUED:
            changed = self._ctx.store.cancel_queued(job_id, owner, now_ms)
        else:
            changed = self._ctx.store.request_cancel(job_id, owner, now_ms)
        if changed is None:
            # The job moved on between the read and the write (it started or finished): decide again.
            return self.cancel(owner, job_id)
        if changed.status.is_terminal:
            # This write ended the job, so this is where its subscribers hear of it (the runner holding
            # it only drops it). A running job ends in its runner, which tells them itself.
            self._tell_subscribers(changed)
        return changed

    def _tell_subscribers(self, job: Job) -> None:
        ctx = self._ctx
        if ctx.poster is None or ctx.connections is None:
            return
        try:
            push_status(ctx.connections, ctx.poster, job, self._presign)
        except Exception as error:  # the cancel is written; a lost frame is only a later REST read
            logger.warning(
                "could not tell the subscribers", extra={"job_id": job.job_id, "error": str(error)}
            )

    def _presign(self, key: str) -> str:
        return self._ctx.artifacts.presign_get(key, self._ctx.settings.output_url_ttl_seconds)

    def view(self, job: Job) -> JobView:
        return job_view(job, self._presign)


def _param_pointers(template: Template | None) -> dict[tuple[str, str], str]:
    """(node_id, input) -> the template param that fills it, as a JSON pointer into the request."""
    if template is None:
        return {}
    return {bind: f"/params/{p.name}" for p in template.parameters for bind in p.bind}
