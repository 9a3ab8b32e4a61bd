"""The outbox's reader: each status transition the jobs table's stream carries becomes an EventBridge
event and one queued attempt per webhook that wants it.

The stream holds every committed write whoever made it (API, runner, dead-letter function, expiry),
once, in order per job; the event source mapping's filter lets only status transitions through.
A batch whose publishing fails is retried from its first record; a record seen twice can only queue
attempts that are already claimed (``WebhookStore.claim_attempt``), so no receiver hears it twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from functions.observability import logger
from functions.webhooks.payload import job_event
from shared.aws.items import job_from_item
from shared.aws.webhook_queue import AttemptQueue, EventBus
from shared.aws.webhooks import WebhookStore
from shared.models import Job, JobStatus
from shared.webhooks.events import DEFAULT_EVENTS, JobEvent, event_of
from shared.webhooks.models import JOB_TARGET, DeliveryMessage, Endpoint


@dataclass
class DispatchDeps:
    webhooks: WebhookStore
    attempts: AttemptQueue
    bus: EventBus | None
    presign: Callable[[str], str]
    clock: Callable[[], float] = field(default=time.time)


@dataclass(frozen=True)
class Transition:
    job: Job
    event: JobEvent
    sequence_number: str


def transitions(records: Iterable[dict[str, Any]]) -> list[Transition]:
    """The status changes among stream records (the filter lets little else through; this decides)."""
    found = []
    for record in records:
        images = record.get("dynamodb", {})
        new, old = images.get("NewImage"), images.get("OldImage")
        if record.get("eventName") != "MODIFY" or not new or not old:
            continue
        try:
            before = JobStatus(old["status"]["S"]) if "status" in old else None
            job = job_from_item(new)
        except (ValueError, KeyError) as error:
            # Retrying cannot make it a job: it would hold back every transition behind it on the shard.
            logger.error(
                "skipped a stream record that is not a job",
                extra={"sequence_number": images.get("SequenceNumber"), "error": str(error)[:500]},
            )
            continue
        event = event_of(before, job.status)
        if event is not None:
            found.append(Transition(job, event, images.get("SequenceNumber", "")))
    return found


def wants(events: list[str], event: JobEvent) -> bool:
    return str(event) in (events or [str(e) for e in DEFAULT_EVENTS])


def attempts_for(transition: Transition, endpoints: list[Endpoint], now_ms: int) -> list[DeliveryMessage]:
    job, event = transition.job, transition.event
    targets = []
    if job.webhook is not None and wants(job.webhook.events, event):
        targets.append(JOB_TARGET)
    targets += [e.endpoint_id for e in endpoints if e.disabled_at is None and wants(e.events, event)]
    return [
        DeliveryMessage(
            job_id=job.job_id,
            owner=job.owner,
            event=str(event),
            target=target,
            attempt=1,
            window_start=now_ms,
        )
        for target in targets
    ]


def dispatch(deps: DispatchDeps, records: list[dict[str, Any]]) -> None:
    """Publish every transition of the batch; raises (and the batch is retried) if any part fails."""
    found = transitions(records)
    if not found:
        return
    now_ms = int(deps.clock() * 1000)
    endpoints: dict[str, list[Endpoint]] = {}
    messages: list[DeliveryMessage] = []
    events: list[tuple[str, dict[str, Any]]] = []
    for transition in found:
        owner = transition.job.owner
        if owner not in endpoints:
            endpoints[owner] = deps.webhooks.list_endpoints(owner)
        messages += attempts_for(transition, endpoints[owner], now_ms)
        if deps.bus is not None:
            detail = job_event(transition.job, transition.event, deps.presign)
            events.append((str(transition.event), {**detail, "tenant": owner}))
    if events and deps.bus is not None:
        deps.bus.put(events)
    if messages:
        deps.attempts.send(messages)
