"""Webhook endpoints, the tenant's job-webhook secret, deliveries and the queue message of an attempt."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

# A job's own webhook (JobRequest.webhook) is this target; an endpoint is its endpoint id.
JOB_TARGET = "job"


class Secrets(BaseModel):
    """A signing secret and, for a while after a rotation, the one before it."""

    secret: str
    previous_secret: str | None = None
    previous_secret_until: int | None = None  # epoch ms

    def in_use(self, now_ms: int) -> list[str]:
        """Newest first: both sign until the previous one's grace ends."""
        keep_previous = self.previous_secret and (self.previous_secret_until or 0) > now_ms
        return [self.secret, self.previous_secret] if keep_previous else [self.secret]  # type: ignore[list-item]


class Endpoint(Secrets):
    """A URL a tenant registered for its jobs' events."""

    endpoint_id: str
    owner: str
    url: str
    events: list[str]
    description: str | None = None
    created_at: int
    # Set when the receiver answered 410 Gone; nothing is sent until it is enabled again.
    disabled_at: int | None = None
    disabled_reason: str | None = None
    # Deliveries given up after their last attempt.
    failure_count: int = 0


class JobSecret(Secrets):
    """The tenant's secret for the webhooks jobs name themselves (``webhook`` in POST /v1/jobs)."""

    created_at: int


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    # Every attempt failed within the retry window: the event went to the dead-letter queue.
    FAILED = "failed"
    # The receiver answered 410 Gone: its endpoint is disabled.
    GONE = "gone"
    # The endpoint was deleted or disabled before the attempt.
    CANCELED = "canceled"


class Attempt(BaseModel):
    attempt: int
    at: int  # epoch ms
    status_code: int | None = None
    latency_ms: int
    error: str | None = None
    response: str | None = None
    # When the next attempt is due, if there is one.
    next_attempt_at: int | None = None


class Delivery(BaseModel):
    """One event to one target, with every attempt made."""

    delivery_id: str
    job_id: str
    owner: str
    event: str
    event_id: str
    target: str
    url: str
    status: DeliveryStatus = DeliveryStatus.PENDING
    attempts_made: int = 0
    attempts: list[Attempt] = Field(default_factory=list)
    created_at: int
    updated_at: int


def delivery_id(event: str, target: str) -> str:
    return f"{event}@{target}"


class DeliveryMessage(BaseModel):
    """The SQS message of one attempt; the delivery item decides whether it still runs."""

    v: int = 1
    job_id: str
    owner: str
    event: str
    target: str
    attempt: int = Field(ge=1)
    # Epoch ms: the retry window runs from here (the first attempt, or a redelivery).
    window_start: int
    # Epoch ms: not to be attempted before (SQS delays stop at 15 minutes; longer waits hop).
    not_before: int | None = None
