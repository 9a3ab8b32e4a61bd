"""Submitting, reading and cancelling jobs: the API's logic, free of HTTP."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from functions.api.cancel_mark import clear_cancel_mark, mark_cancel
from functions.api.context import ApiContext
from functions.api.cursor import InvalidCursor, decode_cursor, encode_cursor
from functions.api.idempotency import IdempotencyKeys, KeyHolder, as_first_given, request_fingerprint
from functions.api.models_service import ModelsService
from functions.api.routing import Placement
from functions.api.schemas import JobRequest
from functions.api.webhooks_service import WebhooksService
from functions.observability import logger
from shared.errors import (
    FieldError,
    IdempotencyKeyReused,
    InvalidRequest,
    JobAlreadyFinished,
    JobNotFound,
    ServiceUnavailable,
)
from shared.file_inputs import file_input_errors
from shared.models import Job, JobStatus
from shared.names import input_key, workflow_key
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


class JobsService:
    def __init__(self, ctx: ApiContext) -> None:
        self._ctx = ctx

    def submit(
        self, owner: str, request: JobRequest, idempotency_key: str | None, path: str
    ) -> SubmitOutcome:
        """Message first, then the job: a job item always has had its message sent. The put is
        conditional, so a job id an Idempotency-Key names is taken once; a message whose put then fails
        (or loses that race) names a job that never was, which the runner drops (gpu_runner/orphans.py)."""
        settings = self._ctx.settings
        fingerprint = request_fingerprint("POST", path, request.model_dump(mode="json"))
        job_id = str(uuid.uuid4())
        if idempotency_key is not None:
            # Before anything is checked or written: a replay answers as the first request did.
            found = self._keys.find(owner, idempotency_key, self._ctx.now_ms() // 1000)
            if isinstance(found, KeyHolder):
                return self._replay(found, fingerprint, idempotency_key)
            job_id = found.job_id
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
        placement = self._place(owner, request, workflow)

        webhook = None
        if request.webhook is not None:
            webhook = WebhooksService(self._ctx).job_webhook(owner, request.webhook)

        now_ms = self._ctx.now_ms()
        job = Job(
            job_id=job_id,
            owner=owner,
            created_at=now_ms,
            updated_at=now_ms,
            deadline=now_ms + settings.queue_deadline_seconds * 1000,
            metadata=request.metadata,
            template=request.template,
            params=params,
            expires_at=now_ms // 1000 + JOB_RETENTION_SECONDS,
            pool=placement.pool,
            lane=placement.lane,
            # Only a tier with a limit counts its jobs in flight: no attribute, no index writes otherwise.
            in_flight=owner if placement.counts_in_flight else None,
            webhook=webhook,
        )
        if idempotency_key is not None:
            job.request_hash = fingerprint
            job.key_expires_at = now_ms // 1000 + settings.idempotency_ttl_seconds
        encoded = json.dumps(workflow, separators=(",", ":")).encode()
        if len(encoded) > settings.inline_workflow_max_bytes:
            # Written before the job that points at it, so no job can ever name a missing object; a
            # request whose job is not created (a lost race for its key) deletes it again below.
            job.workflow_s3_key = workflow_key(owner, job.job_id, uuid.uuid4().hex)
            self._ctx.artifacts.put_bytes(job.workflow_s3_key, encoded, "application/json")
        else:
            job.workflow = workflow

        body = self.view(job).model_dump(mode="json")
        try:
            self._ctx.queue.send_job(job)
        except ServiceUnavailable:
            if job.workflow_s3_key is not None:
                self._discard(job.workflow_s3_key)
            raise
        # A failure here (503) leaves the message alone; the client's retry with its key makes the job
        # under the same id, and the runner drops a message whose job never came. The workflow object
        # stays: a put that failed on the way back may have landed (the bucket's lifecycle removes it).
        if self._ctx.store.create(job):
            return SubmitOutcome(202, body, job.job_id, False)
        # The id was taken meanwhile: the same key's concurrent request won it, and this message is a
        # duplicate of its own, which the runner drops.
        if job.workflow_s3_key is not None:
            self._discard(job.workflow_s3_key)
        winner = self._keys.holder(job.job_id) if idempotency_key is not None else None
        if winner is None:
            raise ServiceUnavailable("the job store refused the new job; try again", cause="IdTaken")
        return self._replay(winner, fingerprint, idempotency_key or "")

    def _replay(self, holder: KeyHolder, fingerprint: str, key: str) -> SubmitOutcome:
        first = holder.job
        if first.request_hash != fingerprint:
            raise IdempotencyKeyReused(
                f"Idempotency-Key {key!r} was first used for a different request "
                f"(job {first.job_id}); use a new key for a new request.",
                [FieldError("header:Idempotency-Key", "already used with a different body")],
            )
        body = self.view(as_first_given(first)).model_dump(mode="json")
        return SubmitOutcome(202, body, first.job_id, True)

    @property
    def _keys(self) -> IdempotencyKeys:
        return IdempotencyKeys(self._ctx.store, self._ctx.settings.idempotency_ttl_seconds)

    def _place(self, owner: str, request: JobRequest, workflow: dict[str, Any]) -> Placement:
        """The job's pool and lane. A retry of a request already accepted never comes here (it was
        replayed above), so it is answered even at the tier's limit."""
        router = self._ctx.router
        if router is None:
            if request.pool not in (None, DEFAULT_POOL):
                raise InvalidRequest(
                    f"pool {request.pool!r} does not exist; this deployment has one pool, {DEFAULT_POOL!r}",
                    [FieldError("/pool", "no such pool")],
                )
            return Placement(None, None)
        return router.place(owner, pool=request.pool, template=request.template, workflow=workflow)

    def _discard(self, key: str) -> None:
        try:
            self._ctx.artifacts.delete(key)
        except (ClientError, BotoCoreError) as error:
            # The bucket's lifecycle rule for workflows removes it later; the caller's answer stands.
            logger.warning("could not delete an unused workflow", extra={"key": key, "cause": str(error)})

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
            marked = mark_cancel(self._ctx.connections, job_id, now_ms)
            changed = self._ctx.store.request_cancel(job_id, owner, now_ms)
            if changed is None and marked:
                clear_cancel_mark(self._ctx.connections, job_id)
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
