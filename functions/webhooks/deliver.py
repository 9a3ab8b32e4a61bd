"""One attempt of one delivery: claim it, sign the job event, POST it safely, and decide what follows.

2xx: delivered. 410: the receiver is gone, its endpoint is disabled. Anything else (another status, no
answer, a refused address): the next attempt is queued after a backoff with jitter or the receiver's
Retry-After, until the retry window closes; then the event goes to the dead-letter queue and the
endpoint's failure count rises. The next attempt is queued before this one's outcome is written, so a
crash in between repeats nothing and loses nothing.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from functions.observability import logger
from functions.webhooks.payload import job_event
from shared.aws.jobs import JobStore
from shared.aws.webhook_queue import MAX_SQS_DELAY_SECONDS, AttemptQueue
from shared.aws.webhooks import WebhookStore
from shared.models import Job
from shared.webhooks.backoff import RetryPolicy, parse_retry_after
from shared.webhooks.events import JobEvent, event_id
from shared.webhooks.models import JOB_TARGET, Attempt, DeliveryMessage, DeliveryStatus, delivery_id
from shared.webhooks.sender import Response, post
from shared.webhooks.signing import signed_headers
from shared.webhooks.urls import Resolver, UnsafeUrl, check_url, resolve_host

# Kept of a receiver's answer in the deliveries log.
RESPONSE_LOG_CHARS = 512


@dataclass
class DeliverDeps:
    jobs: JobStore
    webhooks: WebhookStore
    attempts: AttemptQueue
    presign: Callable[[str], str]
    policy: RetryPolicy
    timeout_seconds: float
    max_response_bytes: int
    allow_local_http: bool = False
    resolve: Resolver = resolve_host
    clock: Callable[[], float] = field(default=time.time)
    rng: random.Random = field(default_factory=random.Random)


@dataclass(frozen=True)
class _Destination:
    url: str
    secrets: list[str]


def _destination(deps: DeliverDeps, message: DeliveryMessage, job: Job, now_ms: int) -> _Destination | None:
    if message.target == JOB_TARGET:
        secret = deps.webhooks.job_secret(message.owner)
        if job.webhook is None or secret is None:
            return None
        return _Destination(job.webhook.url, secret.in_use(now_ms))
    endpoint = deps.webhooks.get_endpoint(message.owner, message.target)
    if endpoint is None or endpoint.disabled_at is not None:
        return None
    return _Destination(endpoint.url, endpoint.in_use(now_ms))


def deliver(deps: DeliverDeps, message: DeliveryMessage) -> None:
    now = deps.clock()
    now_ms = int(now * 1000)
    if message.not_before is not None and message.not_before > now_ms:
        # A wait longer than one SQS delay: hop again.
        deps.attempts.send([message], (message.not_before - now_ms) / 1000)
        return
    job = deps.jobs.get(message.job_id)
    if job is None:
        logger.info("webhook for a job that is gone", extra={"job_id": message.job_id})
        return
    event = JobEvent(message.event)
    delivery = delivery_id(message.event, message.target)
    destination = _destination(deps, message, job, now_ms)
    if destination is None:
        deps.webhooks.cancel_delivery(message.job_id, delivery, message.attempt - 1, now_ms)
        return
    if not deps.webhooks.claim_attempt(message, event_id(job.job_id, event), destination.url, now_ms):
        logger.info("attempt already taken", extra={"job_id": job.job_id, "delivery": delivery})
        return
    response = _send(deps, job, event, destination, now)
    _settle(deps, message, delivery, response, now)


def _send(deps: DeliverDeps, job: Job, event: JobEvent, destination: _Destination, now: float) -> Response:
    try:
        target = check_url(destination.url, allow_local_http=deps.allow_local_http, resolve=deps.resolve)
    except UnsafeUrl as unsafe:
        return Response(None, 0, error=f"refused: {unsafe}")
    body = json.dumps(job_event(job, event, deps.presign), separators=(",", ":")).encode()
    headers = signed_headers(destination.secrets, event_id(job.job_id, event), int(now), body)
    return post(
        target, body, headers, timeout=deps.timeout_seconds, max_response_bytes=deps.max_response_bytes
    )


def _settle(
    deps: DeliverDeps, message: DeliveryMessage, delivery: str, response: Response, started: float
) -> None:
    now = deps.clock()
    now_ms = int(now * 1000)
    attempt = Attempt(
        attempt=message.attempt,
        at=int(started * 1000),
        status_code=response.status,
        latency_ms=response.latency_ms,
        error=response.error,
        response=response.body[:RESPONSE_LOG_CHARS] or None,
    )
    log = {
        "job_id": message.job_id,
        "delivery": delivery,
        "attempt": message.attempt,
        "status": response.status,
    }
    if response.status is not None and 200 <= response.status < 300:
        deps.webhooks.record_attempt(message.job_id, delivery, attempt, DeliveryStatus.DELIVERED, now_ms)
        logger.info("webhook delivered", extra=log)
        return
    if response.status == 410:
        deps.webhooks.record_attempt(message.job_id, delivery, attempt, DeliveryStatus.GONE, now_ms)
        if message.target != JOB_TARGET:
            deps.webhooks.disable_endpoint(
                message.owner, message.target, "the receiver answered 410 Gone", now_ms
            )
        logger.warning("webhook receiver gone", extra=log)
        return
    delay = deps.policy.next_delay(
        message.attempt,
        message.window_start / 1000,
        now,
        parse_retry_after(response.retry_after, now),
        deps.rng,
    )
    if delay is None:
        deps.attempts.dead_letter(message, response.error or f"HTTP {response.status}")
        deps.webhooks.record_attempt(message.job_id, delivery, attempt, DeliveryStatus.FAILED, now_ms)
        if message.target != JOB_TARGET:
            deps.webhooks.count_failure(message.owner, message.target)
        logger.warning("webhook given up", extra=log)
        return
    due_ms = now_ms + int(delay * 1000)
    following = message.model_copy(
        update={
            "attempt": message.attempt + 1,
            "not_before": due_ms if delay > MAX_SQS_DELAY_SECONDS else None,
        }
    )
    deps.attempts.send([following], delay)
    attempt = attempt.model_copy(update={"next_attempt_at": due_ms})
    deps.webhooks.record_attempt(message.job_id, delivery, attempt, DeliveryStatus.PENDING, now_ms)
    logger.info("webhook attempt failed; retrying", extra={**log, "delay_s": round(delay, 1)})
