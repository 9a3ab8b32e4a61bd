"""The DynamoDB, SQS and S3 adapters against LocalStack (``docker compose -f localstack-compose.yml up -d``).

Resources are created from shared.names by ``local.aws_resources`` under a per-run prefix, exercised through
the adapters the Lambdas and the runner use, and deleted afterwards. Without a LocalStack at
``LOCALSTACK_URL`` (default http://127.0.0.1:4566) every test here is skipped and says why.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from local.aws_resources import LocalResources, create_resources
from shared.aws.clients import AwsClients
from shared.aws.jobs import JobStore
from shared.aws.queue import JobQueue
from shared.aws.storage import ArtifactStore
from shared.models import Job, JobStatus
from shared.names import input_key, output_key

pytestmark = pytest.mark.localstack

LOCALSTACK_URL = os.environ.get("LOCALSTACK_URL", "http://127.0.0.1:4566").rstrip("/")
SERVICES = ("dynamodb", "sqs", "s3")
NOW_MS = 1_800_000_000_000


def unavailable_reason(url: str = LOCALSTACK_URL) -> str | None:
    """None when LocalStack answers with every service this group needs; otherwise why not."""
    try:
        with urllib.request.urlopen(f"{url}/_localstack/health", timeout=2) as response:
            health = json.load(response)
    except (OSError, ValueError) as error:
        return f"no LocalStack at {url} ({error})"
    states = health.get("services", {})
    missing = [name for name in SERVICES if states.get(name) not in ("available", "running")]
    if missing:
        return f"LocalStack at {url} does not run {', '.join(missing)}"
    return None


@dataclass
class Stack:
    clients: AwsClients
    resources: LocalResources


@pytest.fixture(scope="module")
def localstack() -> str:
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"{reason}; start it with: docker compose -f localstack-compose.yml up -d")
    return LOCALSTACK_URL


@pytest.fixture
def stack(localstack: str) -> Iterator[Stack]:
    clients = AwsClients(endpoint_url=localstack)
    resources = create_resources(clients, prefix=f"contract-{uuid.uuid4().hex[:8]}-")
    try:
        yield Stack(clients, resources)
    finally:
        _delete(clients, resources)


def _delete(clients: AwsClients, resources: LocalResources) -> None:
    for table in (resources.jobs_table, resources.connections_table):
        clients.dynamodb.delete_table(TableName=table)
    for url in (resources.queue_url, resources.dlq_url):
        clients.sqs.delete_queue(QueueUrl=url)
    listed = clients.s3.list_objects_v2(Bucket=resources.bucket).get("Contents", [])
    for item in listed:
        clients.s3.delete_object(Bucket=resources.bucket, Key=item["Key"])
    clients.s3.delete_bucket(Bucket=resources.bucket)


def _job(job_id: str, owner: str = "owner-1", created_at: int = NOW_MS) -> Job:
    return Job(
        job_id=job_id,
        owner=owner,
        created_at=created_at,
        updated_at=created_at,
        workflow={"1": {"class_type": "SaveImage", "inputs": {"strength": 0.5}}},
    )


def test_a_job_written_is_read_back_and_listed_by_owner(stack: Stack) -> None:
    store = JobStore(stack.clients.dynamodb, stack.resources.jobs_table)
    store.create(_job("job-1"))
    store.create(_job("job-2", created_at=NOW_MS + 1))

    job = store.get("job-1")
    assert job is not None
    assert job.status is JobStatus.QUEUED
    assert job.workflow == {"1": {"class_type": "SaveImage", "inputs": {"strength": 0.5}}}
    jobs, _ = store.list_by_owner("owner-1", limit=10)
    assert [j.job_id for j in jobs] == ["job-2", "job-1"]  # newest first, through the by-owner index
    assert store.get("missing") is None


def test_a_claim_is_conditional_on_no_live_lease(stack: Stack) -> None:
    store = JobStore(stack.clients.dynamodb, stack.resources.jobs_table)
    store.create(_job("job-1"))
    first = store.claim("job-1", "runner-a", NOW_MS, NOW_MS + 60_000)
    assert first is not None
    assert first.attempt == 1
    assert store.claim("job-1", "runner-b", NOW_MS + 1, NOW_MS + 60_001) is None


def test_a_message_sent_is_received_hidden_and_deleted(stack: Stack) -> None:
    queue = JobQueue(stack.clients.sqs, stack.resources.queue_url)
    queue.send("job-1")
    (message,) = queue.receive(max_messages=1, wait_seconds=5, visibility_seconds=30)
    assert message.parse().job_id == "job-1"
    assert message.receive_count == 1
    assert queue.receive(max_messages=1, wait_seconds=1, visibility_seconds=30) == []
    queue.change_visibility(message.receipt_handle, 0)
    (again,) = queue.receive(max_messages=1, wait_seconds=5, visibility_seconds=30)
    assert again.receive_count == 2
    queue.delete(again.receipt_handle)
    assert queue.receive(max_messages=1, wait_seconds=1, visibility_seconds=0) == []


def test_an_object_put_is_read_back_and_served_by_a_presigned_url(stack: Stack) -> None:
    store = ArtifactStore(stack.clients.s3, stack.resources.bucket)
    key = output_key("owner-1", "job-1", 1, "9", "image.png")
    store.put_bytes(key, b"\x89PNG-bytes", "image/png")
    assert store.get_bytes(key) == b"\x89PNG-bytes"
    assert store.exists(key)
    assert not store.exists(input_key("owner-1", "nothing-here"))
    with urllib.request.urlopen(store.presign_get(key, 60), timeout=5) as response:
        assert response.read() == b"\x89PNG-bytes"
        assert response.headers["Content-Type"] == "image/png"


def test_the_skip_says_how_to_start_localstack() -> None:
    reason = unavailable_reason("http://127.0.0.1:9")
    assert reason is not None
    assert "127.0.0.1:9" in reason
