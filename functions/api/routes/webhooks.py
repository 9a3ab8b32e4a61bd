"""/v1/webhooks: the tenant's webhook endpoints and job-webhook secret; a job's deliveries."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from functions.api.deps import Context, Owner
from functions.api.json_body import JSON_BODY_RESPONSES, JsonBodyRoute
from functions.api.problems import PROBLEM
from functions.api.webhook_schemas import (
    DeliveryList,
    DeliveryView,
    EndpointList,
    EndpointRequest,
    EndpointView,
    EndpointWithSecret,
    JobSecretView,
)
from functions.api.webhooks_service import WebhooksService


def get_webhooks_service(ctx: Context) -> WebhooksService:
    return WebhooksService(ctx)


Webhooks = Annotated[WebhooksService, Depends(get_webhooks_service)]

router = APIRouter(prefix="/v1", tags=["webhooks"], route_class=JsonBodyRoute)
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: PROBLEM}


@router.post(
    "/webhooks",
    status_code=201,
    response_model=EndpointWithSecret,
    operation_id="create_webhook",
    responses={**JSON_BODY_RESPONSES, 409: PROBLEM},
)
def create_webhook(
    body: EndpointRequest, owner: Owner, webhooks: Webhooks, response: Response
) -> EndpointWithSecret:
    """Register a URL for your jobs' events, signed as Standard Webhooks says with the `secret` in
    the answer (shown now and at rotation only). The URL must be https and resolve to public addresses."""
    created = webhooks.create(owner, body)
    response.headers["Location"] = f"/v1/webhooks/{created.webhook_id}"
    return created


@router.get("/webhooks", response_model=EndpointList, operation_id="list_webhooks")
def list_webhooks(owner: Owner, webhooks: Webhooks) -> EndpointList:
    """Your webhook endpoints, oldest first, without their secrets."""
    return webhooks.list(owner)


# Declared before /webhooks/{webhook_id}, which would otherwise take "job-secret" for an id.
@router.get("/webhooks/job-secret", response_model=JobSecretView, operation_id="get_job_webhook_secret")
def get_job_webhook_secret(owner: Owner, webhooks: Webhooks) -> JobSecretView:
    """The secret that signs the webhooks your jobs name themselves (`webhook` in POST /v1/jobs)."""
    return webhooks.job_secret(owner)


@router.post(
    "/webhooks/job-secret/rotate", response_model=JobSecretView, operation_id="rotate_job_webhook_secret"
)
def rotate_job_webhook_secret(owner: Owner, webhooks: Webhooks) -> JobSecretView:
    """A new job-webhook secret; the previous one keeps signing beside it for a day."""
    return webhooks.rotate_job_secret(owner)


@router.get(
    "/webhooks/{webhook_id}", response_model=EndpointView, operation_id="get_webhook", responses=NOT_FOUND
)
def get_webhook(webhook_id: str, owner: Owner, webhooks: Webhooks) -> EndpointView:
    """One webhook endpoint: its events, whether it is enabled, how many events it failed."""
    return webhooks.get(owner, webhook_id)


@router.delete("/webhooks/{webhook_id}", status_code=204, operation_id="delete_webhook", responses=NOT_FOUND)
def delete_webhook(webhook_id: str, owner: Owner, webhooks: Webhooks) -> Response:
    """Stop sending to this endpoint; attempts already queued for it are dropped."""
    webhooks.delete(owner, webhook_id)
    return Response(status_code=204)


@router.post(
    "/webhooks/{webhook_id}/rotate-secret",
    response_model=EndpointWithSecret,
    operation_id="rotate_webhook_secret",
    responses=NOT_FOUND,
)
def rotate_webhook_secret(webhook_id: str, owner: Owner, webhooks: Webhooks) -> EndpointWithSecret:
    """A new secret; the previous one keeps signing beside it for a day, so receivers can switch over."""
    return webhooks.rotate(owner, webhook_id)


@router.post(
    "/webhooks/{webhook_id}/enable",
    response_model=EndpointView,
    operation_id="enable_webhook",
    responses=NOT_FOUND,
)
def enable_webhook(webhook_id: str, owner: Owner, webhooks: Webhooks) -> EndpointView:
    """Send to an endpoint again after its receiver answered 410 Gone."""
    return webhooks.enable(owner, webhook_id)


@router.get(
    "/jobs/{job_id}/deliveries",
    response_model=DeliveryList,
    operation_id="list_deliveries",
    responses=NOT_FOUND,
)
def list_deliveries(job_id: str, owner: Owner, webhooks: Webhooks) -> DeliveryList:
    """Each webhook delivery of this job's events: every attempt's time, status and latency."""
    return webhooks.deliveries(owner, job_id)


@router.post(
    "/jobs/{job_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    response_model=DeliveryView,
    operation_id="redeliver",
    responses={404: PROBLEM, 409: PROBLEM},
)
def redeliver(job_id: str, delivery_id: str, owner: Owner, webhooks: Webhooks) -> DeliveryView:
    """Send a finished delivery again (same `webhook-id`, a new signature and retry window)."""
    return webhooks.redeliver(owner, job_id, delivery_id)
