"""Request and response bodies of the webhook routes (docs/webhooks.md)."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field

from shared.webhooks.events import JobEvent
from shared.webhooks.models import Attempt, Delivery, DeliveryStatus, Endpoint

EVENTS_DESCRIPTION = (
    "The events to send; default: the outcomes (job.succeeded, job.failed, job.canceled, job.expired). "
    "job.running is sent only when named."
)


def _time(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, tz=UTC) if ms is not None else None


class JobWebhookRequest(BaseModel):
    """Where this job's events go, signed with your job-webhook secret (GET /v1/webhooks/job-secret)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="https URL to POST each event to", max_length=2048)
    events: list[JobEvent] | None = Field(default=None, description=EVENTS_DESCRIPTION, max_length=5)


class EndpointRequest(BaseModel):
    """A URL that receives your jobs' events."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"url": "https://hooks.example.com/comfy", "events": ["job.succeeded"]}]
        },
    )

    url: str = Field(description="https URL to POST each event to", max_length=2048)
    events: list[JobEvent] | None = Field(default=None, description=EVENTS_DESCRIPTION, max_length=5)
    description: str | None = Field(default=None, max_length=200, description="Your own note")


class EndpointView(BaseModel):
    webhook_id: str
    url: str
    events: list[str]
    description: str | None = None
    created_at: datetime
    enabled: bool = Field(description="False once the receiver answered 410 Gone, until enabled again")
    disabled_at: datetime | None = None
    disabled_reason: str | None = None
    failure_count: int = Field(description="Events given up after their last attempt")

    @classmethod
    def of(cls, endpoint: Endpoint) -> EndpointView:
        return cls(
            webhook_id=endpoint.endpoint_id,
            url=endpoint.url,
            events=endpoint.events,
            description=endpoint.description,
            created_at=datetime.fromtimestamp(endpoint.created_at / 1000, tz=UTC),
            enabled=endpoint.disabled_at is None,
            disabled_at=_time(endpoint.disabled_at),
            disabled_reason=endpoint.disabled_reason,
            failure_count=endpoint.failure_count,
        )


class EndpointWithSecret(EndpointView):
    """Shown only when the endpoint is created and when its secret is rotated: keep the secret."""

    secret: str = Field(description="Standard Webhooks secret (whsec_...) to verify signatures with")
    previous_secret_expires_at: datetime | None = Field(
        default=None, description="Until then the previous secret signs too, beside this one"
    )


class EndpointList(BaseModel):
    items: list[EndpointView]


class JobSecretView(BaseModel):
    """The secret that signs the webhooks jobs name themselves."""

    secret: str
    previous_secret_expires_at: datetime | None = None


class AttemptView(BaseModel):
    attempt: int
    at: datetime
    status_code: int | None = Field(description="The receiver's HTTP status; null when it did not answer")
    latency_ms: int
    error: str | None = None
    response: str | None = Field(default=None, description="The start of the receiver's answer")
    next_attempt_at: datetime | None = None

    @classmethod
    def of(cls, attempt: Attempt) -> AttemptView:
        return cls(
            attempt=attempt.attempt,
            at=datetime.fromtimestamp(attempt.at / 1000, tz=UTC),
            status_code=attempt.status_code,
            latency_ms=attempt.latency_ms,
            error=attempt.error,
            response=attempt.response,
            next_attempt_at=_time(attempt.next_attempt_at),
        )


class DeliveryView(BaseModel):
    delivery_id: str = Field(description="<event>@<target>: the target is 'job' or a webhook id")
    event: str
    event_id: str = Field(description="The webhook-id header: the same on every attempt")
    target: str
    url: str
    status: DeliveryStatus
    attempts: list[AttemptView]

    @classmethod
    def of(cls, delivery: Delivery) -> DeliveryView:
        return cls(
            delivery_id=delivery.delivery_id,
            event=delivery.event,
            event_id=delivery.event_id,
            target=delivery.target,
            url=delivery.url,
            status=delivery.status,
            attempts=[AttemptView.of(a) for a in delivery.attempts],
        )


class DeliveryList(BaseModel):
    items: list[DeliveryView]
