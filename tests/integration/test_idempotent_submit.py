"""POST /v1/jobs without a transaction: the message is sent first, then the job is put conditionally,
and an Idempotency-Key names the job it makes (functions/api/idempotency.py). Over moto, in-process."""

from __future__ import annotations

import json
from typing import Any

import pytest

from functions.api import context
from functions.api.idempotency import FreeKey, IdempotencyKeys, keyed_job_id
from shared.aws.jobs import JobStore
from shared.errors import ServiceUnavailable
from shared.models import JobStatus, OutputFile
from shared.names import S3Prefix
from tests.integration.conftest import ApiCall

DAY_S = 24 * 3600


@pytest.fixture
def clock(api: ApiCall) -> list[float]:
    """The API's clock, in epoch seconds: set ``clock[0]`` to move it."""
    now = [1_800_000_000.0]
    context.default_context().clock = lambda: now[0]
    return now


def _jobs(moto_aws: Any) -> list[dict[str, Any]]:
    clients, resources = moto_aws
    return list(clients.dynamodb.scan(TableName=resources.jobs_table)["Items"])


def _messages(moto_aws: Any) -> list[str]:
    clients, resources = moto_aws
    found = clients.sqs.receive_message(QueueUrl=resources.queue_url, MaxNumberOfMessages=10)
    return [json.loads(m["Body"])["job_id"] for m in found.get("Messages", [])]


def _workflow_objects(moto_aws: Any) -> list[str]:
    clients, resources = moto_aws
    listed = clients.s3.list_objects_v2(Bucket=resources.bucket, Prefix=f"{S3Prefix.WORKFLOWS}/")
    return [item["Key"] for item in listed.get("Contents", [])]


def test_a_replay_after_the_job_ran_is_the_first_answer_byte_for_byte(
    api: ApiCall, moto_aws: Any, simple_workflow: dict[str, Any], clock: list[float]
) -> None:
    key = {"Idempotency-Key": "ran-already"}
    first = api("POST", "/v1/jobs", {"workflow": simple_workflow, "metadata": {"n": 1.5}}, key)
    assert first.status == 202
    job_id = first.body["job_id"]
    clients, resources = moto_aws
    store = JobStore(clients.dynamodb, resources.jobs_table)
    now_ms = int(clock[0] * 1000)
    assert store.claim(job_id, "runner", now_ms + 10, now_ms + 60_000)
    assert store.mark_running(job_id, 1, now_ms + 20)
    output = OutputFile(node_id="3", filename="a.png", key="outputs/x.png", content_type="image/png", size=3)
    assert store.finish(job_id, 1, JobStatus.SUCCEEDED, now_ms + 30, outputs=[output])
    current = api("GET", f"/v1/jobs/{job_id}")
    assert current.body["status"] == "succeeded" and current.body["outputs"]

    clock[0] += 3600
    again = api("POST", "/v1/jobs", {"workflow": simple_workflow, "metadata": {"n": 1.5}}, key)
    assert again.status == 202 and again.headers["idempotent-replayed"] == "true"
    assert again.raw == first.raw, "the receipt as first given, not the job as it is now"
    assert again.headers["location"] == first.headers["location"]
    assert len(_jobs(moto_aws)) == 1


def test_a_key_reused_after_it_lapsed_makes_a_new_job_and_never_two_while_it_lives(
    api: ApiCall, moto_aws: Any, simple_workflow: dict[str, Any], clock: list[float]
) -> None:
    key = {"Idempotency-Key": "daily"}
    body = {"workflow": simple_workflow}
    first = api("POST", "/v1/jobs", body, key)
    clock[0] += DAY_S  # the last second the key lives
    assert api("POST", "/v1/jobs", body, key).headers.get("idempotent-replayed") == "true"
    clock[0] += 1
    second = api("POST", "/v1/jobs", body, key)
    assert second.status == 202 and "idempotent-replayed" not in second.headers
    assert second.body["job_id"] != first.body["job_id"]
    assert second.body["job_id"] == keyed_job_id("owner-a", "daily", 1)
    # Now the new job answers for the key: its body replays, another is refused.
    clock[0] += 60
    assert api("POST", "/v1/jobs", body, key).body["job_id"] == second.body["job_id"]
    changed = api("POST", "/v1/jobs", {**body, "metadata": {"v": 2}}, key)
    assert changed.status == 422 and second.body["job_id"] in changed.body["detail"]
    assert len(_jobs(moto_aws)) == 2


def test_a_lapsed_job_is_kept_while_the_next_generations_key_lives_and_free_once_gone(
    api: ApiCall, moto_aws: Any, simple_workflow: dict[str, Any], clock: list[float]
) -> None:
    """Were generation 0 deleted by the table's TTL while generation 1's key lived, the next request
    would find generation 0 free and make a second job for a live key."""
    key = {"Idempotency-Key": "near-its-end"}
    first = api("POST", "/v1/jobs", {"workflow": simple_workflow}, key).body
    clients, resources = moto_aws
    store = JobStore(clients.dynamodb, resources.jobs_table)
    old = store.get(first["job_id"])
    assert old is not None and old.expires_at is not None
    clock[0] = old.expires_at - 3600  # an hour before the table may delete it
    second = api("POST", "/v1/jobs", {"workflow": simple_workflow}, key).body
    kept, new = store.get(first["job_id"]), store.get(second["job_id"])
    assert kept is not None and new is not None and new.key_expires_at is not None
    assert kept.expires_at is not None and kept.expires_at >= new.key_expires_at

    # Once both are gone (the TTL ran), generation 0 is free again: no key behind it can be alive.
    for job_id in (first["job_id"], second["job_id"]):
        clients.dynamodb.delete_item(TableName=resources.jobs_table, Key={"job_id": {"S": job_id}})
    clock[0] = kept.expires_at + 1
    again = api("POST", "/v1/jobs", {"workflow": simple_workflow}, key)
    assert again.status == 202 and "idempotent-replayed" not in again.headers
    assert again.body["job_id"] == first["job_id"] == keyed_job_id("owner-a", "near-its-end", 0)


def _stale_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The next request reads its key before the concurrent request's put lands: it sees no job."""
    real = IdempotencyKeys.find

    def find(self: IdempotencyKeys, owner: str, key: str, now_s: int) -> Any:
        monkeypatch.setattr(IdempotencyKeys, "find", real)
        return FreeKey(keyed_job_id(owner, key, 0))

    monkeypatch.setattr(IdempotencyKeys, "find", find)


def test_concurrent_submits_with_one_key_make_one_job_and_the_loser_answers_from_it(
    api: ApiCall, moto_aws: Any, simple_workflow: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INLINE_WORKFLOW_MAX_BYTES", "1024")
    context.default_context.cache_clear()
    key = {"Idempotency-Key": "double-click"}
    first = api("POST", "/v1/jobs", {"workflow": simple_workflow}, key)
    _stale_read_once(monkeypatch)
    raced = api("POST", "/v1/jobs", {"workflow": simple_workflow}, key)
    assert raced.status == 202 and raced.headers["idempotent-replayed"] == "true"
    assert raced.raw == first.raw
    assert len(_jobs(moto_aws)) == 1
    # Both sent a message for the one job: the runner takes it once and drops the duplicate.
    assert _messages(moto_aws) == [first.body["job_id"]] * 2

    # Another body racing for a key: refused, and only its own large workflow is deleted.
    graph = {str(i): {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8}} for i in range(40)}
    other = {**graph, "40": {"class_type": "EmptyImage", "inputs": {"width": 9, "height": 9}}}
    key = {"Idempotency-Key": "large-race"}
    winner = api("POST", "/v1/jobs", {"workflow": graph}, key)
    _stale_read_once(monkeypatch)
    refused = api("POST", "/v1/jobs", {"workflow": other}, key)
    assert (winner.status, refused.status) == (202, 422)
    clients, resources = moto_aws
    job = JobStore(clients.dynamodb, resources.jobs_table).get(winner.body["job_id"])
    assert job is not None and _workflow_objects(moto_aws) == [job.workflow_s3_key]
    stored = clients.s3.get_object(Bucket=resources.bucket, Key=job.workflow_s3_key)["Body"].read()
    assert json.loads(stored) == graph, "the winner's workflow is untouched"
    assert len(_jobs(moto_aws)) == 2


def test_a_failed_send_makes_no_job_and_a_failed_put_leaves_a_message_the_retry_gives_its_job(
    api: ApiCall, moto_aws: Any, simple_workflow: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, resources = moto_aws
    monkeypatch.setenv("INLINE_WORKFLOW_MAX_BYTES", "1024")
    # A queue that does not exist: SendMessage fails for real.
    monkeypatch.setenv("JOBS_QUEUE_URL", resources.queue_url + "-missing")
    context.default_context.cache_clear()
    graph = {str(i): {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8}} for i in range(40)}
    answer = api("POST", "/v1/jobs", {"workflow": graph}, {"Idempotency-Key": "unsent"})
    assert answer.status == 503 and answer.body["type"].endswith("service-unavailable")
    assert _jobs(moto_aws) == [] and _workflow_objects(moto_aws) == []

    monkeypatch.setenv("JOBS_QUEUE_URL", resources.queue_url)
    context.default_context.cache_clear()
    key = {"Idempotency-Key": "put-failed"}
    real_create = JobStore.create

    def unavailable(self: JobStore, job: Any) -> bool:
        raise ServiceUnavailable("the job store could not save the job (InternalServerError)")

    monkeypatch.setattr(JobStore, "create", unavailable)
    failed = api("POST", "/v1/jobs", {"workflow": simple_workflow}, key)
    assert failed.status == 503 and _jobs(moto_aws) == []
    monkeypatch.setattr(JobStore, "create", real_create)
    retried = api("POST", "/v1/jobs", {"workflow": simple_workflow}, key)
    assert retried.status == 202 and "idempotent-replayed" not in retried.headers
    # The first message now names a job that exists: a duplicate delivery, not an orphan.
    assert _messages(moto_aws) == [retried.body["job_id"]] * 2
