"""Webhooks: verify what the service sends you, and manage where it sends it.

The service signs each webhook as the Standard Webhooks specification says; :func:`verify_webhook`
checks a request with nothing but the standard library (the ``standardwebhooks`` package checks the
same signatures)::

    event = verify_webhook(request.body, request.headers, secret)   # raises InvalidSignature
    if event["type"] == "job.succeeded":
        for output in event["data"]["outputs"]: ...
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from comfy_jobs.errors import ComfyJobsError

if TYPE_CHECKING:
    from comfy_jobs.client import Client

# How far a webhook's timestamp may be from now: older ones may be replays.
DEFAULT_TOLERANCE_SECONDS = 300


class InvalidSignature(ComfyJobsError):
    """A webhook whose signature, id or timestamp does not check out: do not act on it."""


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"))


def verify_webhook(
    body: bytes | str,
    headers: Mapping[str, str],
    secret: str,
    *,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> dict[str, Any]:
    """The event, once its ``webhook-signature`` is found to be made with ``secret``; else InvalidSignature.

    ``body`` must be the raw bytes received (not re-serialized JSON). During a secret rotation the
    service signs with both secrets, so either one verifies.
    """
    raw = body.encode() if isinstance(body, str) else body
    lowered = {k.lower(): v for k, v in headers.items()}
    message_id = lowered.get("webhook-id")
    timestamp = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not (message_id and timestamp and signatures):
        raise InvalidSignature("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        sent = int(timestamp)
    except ValueError:
        raise InvalidSignature(f"webhook-timestamp is not a number: {timestamp!r}") from None
    if abs((time.time() if now is None else now) - sent) > tolerance_seconds:
        raise InvalidSignature("webhook-timestamp is too old or too new (a replay?)")
    signed = f"{message_id}.{sent}.".encode() + raw
    expected = base64.b64encode(hmac.new(_key(secret), signed, hashlib.sha256).digest()).decode()
    for candidate in signatures.split(" "):
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            event: dict[str, Any] = json.loads(raw)
            return event
    raise InvalidSignature("no signature made with this secret")


@dataclass(frozen=True)
class Webhook:
    webhook_id: str
    url: str
    events: list[str]
    enabled: bool
    failure_count: int
    created_at: datetime
    description: str | None = None
    disabled_reason: str | None = None
    # Only when the webhook was just created or its secret rotated.
    secret: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Webhook:
        return cls(
            webhook_id=data["webhook_id"],
            url=data["url"],
            events=list(data.get("events") or []),
            enabled=bool(data.get("enabled", True)),
            failure_count=int(data.get("failure_count", 0)),
            created_at=datetime.fromisoformat(data["created_at"]),
            description=data.get("description"),
            disabled_reason=data.get("disabled_reason"),
            secret=data.get("secret"),
        )


@dataclass(frozen=True)
class Delivery:
    delivery_id: str
    event: str
    event_id: str
    target: str
    url: str
    status: str
    attempts: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Delivery:
        return cls(
            delivery_id=data["delivery_id"],
            event=data["event"],
            event_id=data["event_id"],
            target=data["target"],
            url=data["url"],
            status=data["status"],
            attempts=list(data.get("attempts") or []),
        )


class Webhooks:
    """``client.webhooks``: the tenant's endpoints, its job-webhook secret, and a job's deliveries."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def create(self, url: str, events: list[str] | None = None, description: str | None = None) -> Webhook:
        body: dict[str, Any] = {"url": url}
        if events:
            body["events"] = events
        if description:
            body["description"] = description
        return Webhook.from_dict(self._client.request("POST", "/v1/webhooks", json=body).json())

    def list(self) -> list[Webhook]:
        items = self._client.request("GET", "/v1/webhooks").json()["items"]
        return [Webhook.from_dict(item) for item in items]

    def get(self, webhook_id: str) -> Webhook:
        return Webhook.from_dict(self._client.request("GET", f"/v1/webhooks/{webhook_id}").json())

    def delete(self, webhook_id: str) -> None:
        self._client.request("DELETE", f"/v1/webhooks/{webhook_id}")

    def rotate_secret(self, webhook_id: str) -> Webhook:
        return Webhook.from_dict(
            self._client.request("POST", f"/v1/webhooks/{webhook_id}/rotate-secret").json()
        )

    def enable(self, webhook_id: str) -> Webhook:
        return Webhook.from_dict(self._client.request("POST", f"/v1/webhooks/{webhook_id}/enable").json())

    def job_secret(self) -> str:
        """The secret that signs the webhooks jobs name themselves (``submit(webhook=...)``)."""
        return str(self._client.request("GET", "/v1/webhooks/job-secret").json()["secret"])

    def rotate_job_secret(self) -> str:
        return str(self._client.request("POST", "/v1/webhooks/job-secret/rotate").json()["secret"])

    def deliveries(self, job_id: str) -> list[Delivery]:
        items = self._client.request("GET", f"/v1/jobs/{job_id}/deliveries").json()["items"]
        return [Delivery.from_dict(item) for item in items]

    def redeliver(self, job_id: str, delivery_id: str) -> Delivery:
        path = f"/v1/jobs/{job_id}/deliveries/{delivery_id}/redeliver"
        return Delivery.from_dict(self._client.request("POST", path).json())
