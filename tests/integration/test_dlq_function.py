"""The DLQ function, called with the SQS event Lambda sends, over moto: partial batch failures included."""

from __future__ import annotations

import json
from typing import Any

import pytest

from local.dlq_source import sqs_event
from shared.aws.jobs import JobStore
from shared.models import Job, JobStatus
from tests.integration.conftest import FakeLambdaContext


def message(body: str, message_id: str, receives: int = 5) -> dict[str, Any]:
    return {
        "MessageId": message_id,
        "ReceiptHandle": f"rh-{message_id}",
        "Body": body,
        "Attributes": {"ApproximateReceiveCount": str(receives), "SentTimestamp": "1", "SenderId": "x"},
        "MD5OfBody": "",
    }


@pytest.fixture
def dlq(moto_aws: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    from functions.dlq import handler as module

    module._deps.cache_clear()
    yield module
    module._deps.cache_clear()


def test_a_dead_letter_fails_its_job_and_a_bad_or_jobless_one_is_dropped(dlq: Any, moto_aws: Any) -> None:
    clients, resources = moto_aws
    store = JobStore(clients.dynamodb, resources.jobs_table)
    store.create(Job(job_id="j1", owner="o", created_at=1, updated_at=1))
    store.create(Job(job_id="j2", owner="o", status=JobStatus.SUCCEEDED, created_at=1, updated_at=1))
    event = sqs_event(
        [
            message(json.dumps({"v": 1, "job_id": "j1"}), "m1"),
            message(json.dumps({"v": 1, "job_id": "j2"}), "m2"),
            message("not json at all", "m3"),
            # Sent by a submission whose put then failed: no job was ever written.
            message(json.dumps({"v": 1, "job_id": "never-written"}), "m4"),
        ],
        "arn:aws:sqs:us-east-1:123456789012:comfy-jobs-dlq",
        "us-east-1",
    )
    result = dlq.handler(event, FakeLambdaContext())
    assert result == {"batchItemFailures": []}
    failed = store.get("j1")
    assert failed is not None and failed.status is JobStatus.FAILED
    assert failed.error is not None and failed.error.code == "max_attempts_exceeded"
    assert "5 deliveries" in failed.error.message
    assert store.get("j2").status is JobStatus.SUCCEEDED  # type: ignore[union-attr]
    assert store.get("never-written") is None, "failing a missing job must not write one"


def test_records_that_cannot_be_processed_now_come_back(
    dlq: Any, moto_aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

    monkeypatch.setenv("JOBS_TABLE_NAME", "no-such-table")
    arn = "arn:aws:sqs:us-east-1:123456789012:comfy-jobs-dlq"
    mixed = sqs_event(
        [message(json.dumps({"v": 1, "job_id": "j1"}), "m1"), message("junk", "m2")], arn, "us-east-1"
    )
    assert dlq.handler(mixed, FakeLambdaContext()) == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    # When every record fails the invocation fails, and Lambda hands the whole batch back.
    only = sqs_event([message(json.dumps({"v": 1, "job_id": "j1"}), "m1")], arn, "us-east-1")
    with pytest.raises(BatchProcessingError):
        dlq.handler(only, FakeLambdaContext())
