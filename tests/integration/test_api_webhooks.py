"""The webhook routes through the API handler over moto: endpoints, the job-webhook secret, a job's own
webhook, deliveries and redelivery, and every refusal as a problem document that says where."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from shared.aws.webhooks import WebhookStore
from shared.webhooks.models import Attempt, DeliveryMessage, DeliveryStatus
from tests.integration.conftest import ApiCall

PUBLIC = "https://93.184.216.34/hook"  # an address literal: checked without a DNS lookup


@pytest.fixture(autouse=True)
def _queue(moto_aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_QUEUE_URL", moto_aws[1].webhook_queue_url)


def test_an_endpoint_is_created_listed_rotated_and_deleted_and_its_secret_shown_only_when_made(
    api: ApiCall,
) -> None:
    created = api("POST", "/v1/webhooks", {"url": PUBLIC, "events": ["job.succeeded", "job.running"]})
    assert created.status == 201, created.body
    webhook_id = created.body["webhook_id"]
    assert created.headers["location"] == f"/v1/webhooks/{webhook_id}"
    assert created.body["secret"].startswith("whsec_") and created.body["enabled"] is True

    listed = api("GET", "/v1/webhooks")
    assert [w["webhook_id"] for w in listed.body["items"]] == [webhook_id]
    assert "secret" not in listed.body["items"][0]
    assert api("GET", "/v1/webhooks", owner="someone-else").body["items"] == []
    assert api("GET", f"/v1/webhooks/{webhook_id}", owner="someone-else").status == 404

    rotated = api("POST", f"/v1/webhooks/{webhook_id}/rotate-secret")
    assert rotated.status == 200
    assert rotated.body["secret"] != created.body["secret"]
    assert rotated.body["previous_secret_expires_at"] is not None

    assert api("DELETE", f"/v1/webhooks/{webhook_id}").status == 204
    gone = api("GET", f"/v1/webhooks/{webhook_id}")
    assert gone.status == 404 and gone.body["type"].endswith("webhook-not-found")
    assert api("DELETE", f"/v1/webhooks/{webhook_id}").status == 404
    assert api("POST", f"/v1/webhooks/{webhook_id}/enable").status == 404


def test_a_tenant_without_a_job_secret_can_rotate_one_into_being(api: ApiCall) -> None:
    rotated = api("POST", "/v1/webhooks/job-secret/rotate", owner="fresh-tenant")
    assert rotated.status == 200, rotated.body
    assert rotated.body["secret"].startswith("whsec_")
    assert (
        api("GET", "/v1/webhooks/job-secret", owner="fresh-tenant").body["secret"] == rotated.body["secret"]
    )


REFUSED = [
    ({"url": "http://93.184.216.34/hook"}, "/url", "https"),
    ({"url": "https://10.0.0.8/hook"}, "/url", "private"),
    ({"url": "https://169.254.169.254/latest/meta-data"}, "/url", "link-local"),
    ({"url": "https://127.0.0.1:8000/hook"}, "/url", "loopback"),
    ({"url": PUBLIC, "events": ["job.exploded"]}, "/events/0", ""),
    ({"url": PUBLIC, "secret": "mine"}, "/secret", ""),
]


def test_a_webhook_that_may_not_be_called_is_refused_naming_the_field(api: ApiCall) -> None:
    for body, pointer, detail in REFUSED:
        answer = api("POST", "/v1/webhooks", body)
        assert answer.status == 422, (body, answer.body)
        errors = answer.body["errors"]
        assert any(e["pointer"] == pointer and detail in e["detail"] for e in errors), (body, errors)
    assert api("GET", "/v1/webhooks").body["items"] == []


def test_a_job_names_its_own_webhook_which_is_checked_and_signed_with_the_tenant_job_secret(
    api: ApiCall, simple_workflow: dict[str, Any]
) -> None:
    refused = api(
        "POST", "/v1/jobs", {"workflow": simple_workflow, "webhook": {"url": "https://192.168.1.1/x"}}
    )
    assert refused.status == 422
    assert refused.body["errors"][0]["pointer"] == "/webhook/url"

    submitted = api("POST", "/v1/jobs", {"workflow": simple_workflow, "webhook": {"url": PUBLIC}})
    assert submitted.status == 202, submitted.body
    assert submitted.body["webhook"] == {"url": PUBLIC, "events": []}
    secret = api("GET", "/v1/webhooks/job-secret")
    assert secret.status == 200 and secret.body["secret"].startswith("whsec_")
    assert api("GET", "/v1/webhooks/job-secret").body["secret"] == secret.body["secret"]
    rotated = api("POST", "/v1/webhooks/job-secret/rotate")
    assert rotated.body["secret"] != secret.body["secret"] and rotated.body["previous_secret_expires_at"]


def test_deliveries_are_shown_to_the_job_owner_and_a_finished_one_is_redelivered_as_a_new_attempt(
    api: ApiCall, simple_workflow: dict[str, Any], moto_aws: Any
) -> None:
    clients, resources = moto_aws
    job_id = api("POST", "/v1/jobs", {"workflow": simple_workflow}).body["job_id"]
    assert api("GET", f"/v1/jobs/{job_id}/deliveries").body == {"items": []}
    assert api("GET", f"/v1/jobs/{job_id}/deliveries", owner="someone-else").status == 404

    store = WebhookStore(clients.dynamodb, resources.webhooks_table)
    now = int(time.time() * 1000)
    message = DeliveryMessage(
        job_id=job_id, owner="owner-a", event="job.succeeded", target="wh_x", attempt=1, window_start=now
    )
    assert store.claim_attempt(message, "msg_1", PUBLIC, now)
    store.record_attempt(
        job_id,
        "job.succeeded@wh_x",
        Attempt(attempt=1, at=now, status_code=500, latency_ms=12),
        DeliveryStatus.FAILED,
        now,
    )
    (delivery,) = api("GET", f"/v1/jobs/{job_id}/deliveries").body["items"]
    assert delivery["status"] == "failed" and delivery["attempts"][0]["status_code"] == 500
    assert delivery["attempts"][0]["latency_ms"] == 12

    redelivered = api("POST", f"/v1/jobs/{job_id}/deliveries/job.succeeded@wh_x/redeliver")
    assert redelivered.status == 202 and redelivered.body["status"] == "pending"
    (sent,) = clients.sqs.receive_message(QueueUrl=resources.webhook_queue_url)["Messages"]
    body = json.loads(sent["Body"])
    assert (body["target"], body["attempt"], body["event"]) == ("wh_x", 2, "job.succeeded")
    again = api("POST", f"/v1/jobs/{job_id}/deliveries/job.succeeded@wh_x/redeliver")
    assert again.status == 409
    assert api("POST", f"/v1/jobs/{job_id}/deliveries/job.failed@wh_x/redeliver").status == 404
