"""Webhook endpoints, the job-webhook secret, and a job's deliveries: the API's logic, free of HTTP."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from functions.api.context import ApiContext
from functions.api.webhook_schemas import (
    DeliveryList,
    DeliveryView,
    EndpointList,
    EndpointRequest,
    EndpointView,
    EndpointWithSecret,
    JobSecretView,
    JobWebhookRequest,
)
from shared.errors import DomainError, FieldError, InvalidRequest, JobNotFound
from shared.models import Job, JobWebhook
from shared.webhooks.events import JobEvent
from shared.webhooks.models import DeliveryMessage, Endpoint, JobSecret, Secrets
from shared.webhooks.signing import new_secret
from shared.webhooks.urls import UnsafeUrl, check_url

# Endpoints a tenant may register: each event is sent to every one of them.
MAX_ENDPOINTS = 20


class WebhookNotFound(DomainError):
    status = 404
    title = "No such webhook"
    type_slug = "webhook-not-found"


class DeliveryNotFound(DomainError):
    status = 404
    title = "No such delivery"
    type_slug = "delivery-not-found"


class DeliveryInProgress(DomainError):
    status = 409
    title = "The delivery is still being attempted"
    type_slug = "delivery-in-progress"


class TooManyWebhooks(DomainError):
    status = 409
    title = "The tenant has as many webhooks as it may"
    type_slug = "too-many-webhooks"


def _events(events: list[JobEvent] | None) -> list[str]:
    return list(dict.fromkeys(str(e) for e in events)) if events else []


def _previous_until(secrets_: Secrets) -> datetime | None:
    until = secrets_.previous_secret_until
    return datetime.fromtimestamp(until / 1000, tz=UTC) if secrets_.previous_secret and until else None


class WebhooksService:
    def __init__(self, ctx: ApiContext) -> None:
        self._ctx = ctx
        assert ctx.webhooks is not None, "the API is configured without a webhooks table"
        self._store = ctx.webhooks

    def check_url(self, url: str, pointer: str) -> str:
        try:
            check_url(
                url, allow_local_http=self._ctx.settings.webhook_allow_local_http, resolve=self._ctx.resolve
            )
        except UnsafeUrl as unsafe:
            raise InvalidRequest(
                f"The webhook URL cannot be used: {unsafe}.", [FieldError(pointer, str(unsafe))]
            ) from None
        return url

    # -- a job's own webhook ---------------------------------------------------------------------

    def job_webhook(self, owner: str, request: JobWebhookRequest) -> JobWebhook:
        """Checked at submission; the tenant's job-webhook secret is made on its first use."""
        url = self.check_url(request.url, "/webhook/url")
        self._store.ensure_job_secret(owner, JobSecret(secret=new_secret(), created_at=self._ctx.now_ms()))
        return JobWebhook(url=url, events=_events(request.events))

    def job_secret(self, owner: str) -> JobSecretView:
        secret = self._store.ensure_job_secret(
            owner, JobSecret(secret=new_secret(), created_at=self._ctx.now_ms())
        )
        return JobSecretView(secret=secret.secret, previous_secret_expires_at=_previous_until(secret))

    def rotate_job_secret(self, owner: str) -> JobSecretView:
        now = self._ctx.now_ms()
        secret = self._store.rotate_job_secret(owner, new_secret(), now + self._grace_ms(), now)
        return JobSecretView(secret=secret.secret, previous_secret_expires_at=_previous_until(secret))

    def _grace_ms(self) -> int:
        return self._ctx.settings.webhook_secret_grace_seconds * 1000

    # -- endpoints -------------------------------------------------------------------------------

    def create(self, owner: str, request: EndpointRequest) -> EndpointWithSecret:
        url = self.check_url(request.url, "/url")
        if len(self._store.list_endpoints(owner)) >= MAX_ENDPOINTS:
            raise TooManyWebhooks(f"A tenant may have {MAX_ENDPOINTS} webhooks; delete one first.")
        endpoint = Endpoint(
            endpoint_id="wh_" + secrets.token_hex(8),
            owner=owner,
            url=url,
            events=_events(request.events),
            description=request.description,
            secret=new_secret(),
            created_at=self._ctx.now_ms(),
        )
        self._store.create_endpoint(endpoint)
        return self._with_secret(endpoint)

    def _with_secret(self, endpoint: Endpoint) -> EndpointWithSecret:
        return EndpointWithSecret(
            **EndpointView.of(endpoint).model_dump(),
            secret=endpoint.secret,
            previous_secret_expires_at=_previous_until(endpoint),
        )

    def list(self, owner: str) -> EndpointList:
        endpoints = sorted(self._store.list_endpoints(owner), key=lambda e: e.created_at)
        return EndpointList(items=[EndpointView.of(e) for e in endpoints])

    def get(self, owner: str, webhook_id: str) -> EndpointView:
        return EndpointView.of(self._endpoint(owner, webhook_id))

    def _endpoint(self, owner: str, webhook_id: str) -> Endpoint:
        endpoint = self._store.get_endpoint(owner, webhook_id)
        if endpoint is None:
            raise WebhookNotFound(f"There is no webhook {webhook_id!r} for this API key.")
        return endpoint

    def delete(self, owner: str, webhook_id: str) -> None:
        if not self._store.delete_endpoint(owner, webhook_id):
            raise WebhookNotFound(f"There is no webhook {webhook_id!r} for this API key.")

    def rotate(self, owner: str, webhook_id: str) -> EndpointWithSecret:
        until = self._ctx.now_ms() + self._grace_ms()
        endpoint = self._store.rotate_endpoint_secret(owner, webhook_id, new_secret(), until)
        if endpoint is None:
            raise WebhookNotFound(f"There is no webhook {webhook_id!r} for this API key.")
        return self._with_secret(endpoint)

    def enable(self, owner: str, webhook_id: str) -> EndpointView:
        endpoint = self._store.enable_endpoint(owner, webhook_id)
        if endpoint is None:
            raise WebhookNotFound(f"There is no webhook {webhook_id!r} for this API key.")
        return EndpointView.of(endpoint)

    # -- deliveries ------------------------------------------------------------------------------

    def _job(self, owner: str, job_id: str) -> Job:
        job = self._ctx.store.get(job_id)
        if job is None or job.owner != owner:
            raise JobNotFound(f"There is no job {job_id!r} for this API key.")
        return job

    def deliveries(self, owner: str, job_id: str) -> DeliveryList:
        self._job(owner, job_id)
        items = sorted(self._store.list_deliveries(job_id), key=lambda d: (d.created_at, d.delivery_id))
        return DeliveryList(items=[DeliveryView.of(d) for d in items])

    def redeliver(self, owner: str, job_id: str, delivery_id: str) -> DeliveryView:
        """Send a finished delivery again, as a new attempt with a new retry window."""
        self._job(owner, job_id)
        now = self._ctx.now_ms()
        delivery = self._store.reopen(job_id, delivery_id, now)
        if delivery is None:
            known = {d.delivery_id: d for d in self._store.list_deliveries(job_id)}
            if delivery_id in known:
                raise DeliveryInProgress(
                    f"Delivery {delivery_id!r} is still being attempted; redeliver it once it has finished."
                )
            raise DeliveryNotFound(f"Job {job_id} has no delivery {delivery_id!r}.")
        assert self._ctx.attempts is not None, "the API is configured without a webhook queue"
        message = DeliveryMessage(
            job_id=job_id,
            owner=owner,
            event=delivery.event,
            target=delivery.target,
            attempt=delivery.attempts_made + 1,
            window_start=now,
        )
        self._ctx.attempts.send([message])
        return DeliveryView.of(delivery)
