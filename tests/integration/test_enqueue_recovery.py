"""A job whose SQS send failed is never left queued without a message: the sweeper re-sends it."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from functions.api import context
from functions.sweeper.sweep import resend_pending
from shared.aws.jobs import JobStore
from shared.aws.queue import JobQueue
from tests.integration.conftest import ApiCall


def test_a_failed_send_is_healed_by_the_sweeper(
    api: ApiCall, simple_workflow: dict[str, Any], moto_aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    clients, resources = moto_aws
    # Point the API at a queue that does not exist: SendMessage fails for real.
    monkeypatch.setenv("JOBS_QUEUE_URL", resources.queue_url + "-missing")
    context.default_context.cache_clear()
    answer = api("POST", "/v1/jobs", {"workflow": simple_workflow})
    assert answer.status == 202, "the job is durable; only its message is late"
    job_id = answer.body["job_id"]
    assert "Messages" not in clients.sqs.receive_message(QueueUrl=resources.queue_url, WaitTimeSeconds=0)

    store = JobStore(clients.dynamodb, resources.jobs_table, resources.idempotency_table)
    queue = JobQueue(clients.sqs, resources.queue_url)
    now_ms = int(time.time() * 1000)
    # Within the grace period the sweeper leaves it to the request that may still be sending.
    assert resend_pending(store, queue, now_ms, grace_seconds=60).resent == 0
    result = resend_pending(store, queue, now_ms + 61_000, grace_seconds=60)
    assert result.resent == 1
    [message] = clients.sqs.receive_message(QueueUrl=resources.queue_url, WaitTimeSeconds=0)["Messages"]
    assert json.loads(message["Body"])["job_id"] == job_id
    # Once sent, it is not sent again.
    assert resend_pending(store, queue, now_ms + 120_000, grace_seconds=60).resent == 0


def test_a_sent_job_is_not_swept(api: ApiCall, simple_workflow: dict[str, Any], moto_aws: Any) -> None:
    clients, resources = moto_aws
    api("POST", "/v1/jobs", {"workflow": simple_workflow})
    store = JobStore(clients.dynamodb, resources.jobs_table, resources.idempotency_table)
    queue = JobQueue(clients.sqs, resources.queue_url)
    assert resend_pending(store, queue, int(time.time() * 1000) + 3_600_000, grace_seconds=0).resent == 0


def test_a_canceled_pending_job_is_cleared_not_sent(
    api: ApiCall, simple_workflow: dict[str, Any], moto_aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    clients, resources = moto_aws
    monkeypatch.setenv("JOBS_QUEUE_URL", resources.queue_url + "-missing")
    context.default_context.cache_clear()
    job_id = api("POST", "/v1/jobs", {"workflow": simple_workflow}).body["job_id"]
    api("DELETE", f"/v1/jobs/{job_id}")
    store = JobStore(clients.dynamodb, resources.jobs_table, resources.idempotency_table)
    queue = JobQueue(clients.sqs, resources.queue_url)
    result = resend_pending(store, queue, int(time.time() * 1000) + 3_600_000, grace_seconds=0)
    assert (result.resent, result.cleared) == (0, 1)
