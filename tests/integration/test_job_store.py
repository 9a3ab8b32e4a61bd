"""Every conditional transition of the jobs table, against moto's DynamoDB."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.aws.jobs import JobStore
from shared.gpu_cost import gpu_cost
from shared.models import ErrorCode, Job, JobError, JobStatus, JobTimings, OutputFile

NOW = 1_800_000_000_000


@pytest.fixture
def store(moto_aws: Any) -> JobStore:
    clients, resources = moto_aws
    return JobStore(clients.dynamodb, resources.jobs_table)


def new_job(job_id: str = "j1", owner: str = "o1", **fields: Any) -> Job:
    return Job(
        job_id=job_id,
        owner=owner,
        created_at=NOW,
        updated_at=NOW,
        workflow={"1": {"class_type": "X", "inputs": {"f": 0.5}}},
        **fields,
    )


def test_round_trip_keeps_floats_and_nested_json(store: JobStore) -> None:
    store.create(new_job(metadata={"ratio": 0.25, "tags": ["a"]}))
    job = store.get("j1")
    assert job is not None
    assert job.workflow == {"1": {"class_type": "X", "inputs": {"f": 0.5}}}
    assert job.metadata == {"ratio": 0.25, "tags": ["a"]}


def test_a_job_id_is_created_once(store: JobStore) -> None:
    assert store.create(new_job("j1", metadata={"first": True}))
    assert not store.create(new_job("j1", metadata={"first": False}))
    job = store.get("j1")
    assert job is not None and job.metadata == {"first": True}, "the losing put must change nothing"


def test_keep_until_only_lengthens_and_says_when_the_job_is_gone(store: JobStore) -> None:
    store.create(new_job("j1", expires_at=1_000))
    assert store.keep_until("j1", 2_000)
    assert store.keep_until("j1", 1_500), "already kept long enough"
    assert store.get("j1").expires_at == 2_000  # type: ignore[union-attr]
    assert not store.keep_until("gone", 2_000)
    assert store.get("gone") is None, "keeping a job that is gone must not make one"


def test_claim_fences_and_a_live_lease_blocks_a_second_claim(store: JobStore) -> None:
    store.create(new_job())
    first = store.claim("j1", "runner-a", NOW, NOW + 10_000)
    assert first is not None and first.attempt == 1
    assert store.claim("j1", "runner-b", NOW + 1, NOW + 10_000) is None
    second = store.claim("j1", "runner-b", NOW + 10_001, NOW + 20_000)
    assert second is not None and second.attempt == 2 and second.lease_owner == "runner-b"
    # The first attempt, back from a pause, can write nothing any more.
    assert store.mark_running("j1", 1, NOW) is None
    assert store.renew_lease("j1", 1, NOW + 30_000, NOW) is None
    assert store.finish("j1", 1, JobStatus.SUCCEEDED, NOW) is None
    assert store.finish("j1", 2, JobStatus.SUCCEEDED, NOW, outputs=[]) is not None


def test_terminal_jobs_never_change(store: JobStore) -> None:
    store.create(new_job())
    job = store.claim("j1", "r", NOW, NOW + 1000)
    assert job is not None
    error = JobError(code=ErrorCode.EXECUTION_ERROR, message="boom", node_id="2", details={"x": 1.5})
    failed = store.finish("j1", 1, JobStatus.FAILED, NOW, error=error)
    assert failed is not None and failed.error == error
    assert store.finish("j1", 1, JobStatus.SUCCEEDED, NOW) is None
    assert store.claim("j1", "r", NOW + 5000, NOW + 9000) is None
    assert store.cancel_queued("j1", "o1", NOW) is None
    assert store.fail_if_active("j1", error, NOW) is None


def test_success_stores_outputs_and_clears_the_lease(store: JobStore) -> None:
    store.create(new_job())
    store.claim("j1", "r", NOW, NOW + 1000)
    store.mark_running("j1", 1, NOW)
    output = OutputFile(
        node_id="3", filename="a.png", key="outputs/o1/j1/3/a.png", content_type="image/png", size=3
    )
    done = store.finish("j1", 1, JobStatus.SUCCEEDED, NOW + 5, outputs=[output])
    assert done is not None
    assert (done.status, done.outputs, done.lease_until, done.progress) == (
        JobStatus.SUCCEEDED,
        [output],
        None,
        100,
    )


def test_the_terminal_write_keeps_the_attempts_timings_and_gpu_cost(store: JobStore) -> None:
    store.create(new_job())
    store.claim("j1", "r", NOW, NOW + 1000)
    cost = gpu_cost(JobTimings(queued_ms=900, execution_ms=4_000, upload_ms=500), price_per_hour=1.2)
    store.finish("j1", 1, JobStatus.SUCCEEDED, NOW + 5, outputs=[], cost=cost)
    stored = store.get("j1")
    assert stored is not None
    assert stored.timings == JobTimings(queued_ms=900, execution_ms=4_000, upload_ms=500)
    assert (stored.gpu_seconds, stored.gpu_cost_usd) == (4.5, cost.gpu_cost_usd)
    assert stored.gpu_cost_usd == pytest.approx(4.5 * 1.2 / 3600)


def test_cancel_of_a_queued_job_is_immediate_and_owner_scoped(store: JobStore) -> None:
    store.create(new_job())
    assert store.cancel_queued("j1", "someone-else", NOW) is None
    canceled = store.cancel_queued("j1", "o1", NOW)
    assert canceled is not None and canceled.status is JobStatus.CANCELED


def test_cancel_of_a_running_job_is_a_request_the_runner_hears(store: JobStore) -> None:
    store.create(new_job())
    store.claim("j1", "r", NOW, NOW + 1000)
    store.mark_running("j1", 1, NOW)
    assert store.request_cancel("j1", "o1", NOW) is not None
    heard = store.renew_lease("j1", 1, NOW + 2000, NOW)
    assert heard is not None and heard.cancel_requested


def test_expire_only_from_queued(store: JobStore) -> None:
    store.create(new_job())
    store.claim("j1", "r", NOW, NOW + 1000)
    expired = store.expire("j1", 1, NOW)
    assert expired is not None and expired.status is JobStatus.EXPIRED
    store.create(new_job("j2"))
    store.claim("j2", "r", NOW, NOW + 1000)
    store.mark_running("j2", 1, NOW)
    assert store.expire("j2", 1, NOW) is None


def test_release_lets_another_runner_claim_at_once(store: JobStore) -> None:
    store.create(new_job())
    store.claim("j1", "r", NOW, NOW + 60_000)
    assert store.release("j1", 1, NOW) is not None
    again = store.claim("j1", "r2", NOW + 1, NOW + 60_000)
    assert again is not None and again.attempt == 2


def test_a_new_attempt_of_a_running_job_marks_it_running_again(store: JobStore) -> None:
    store.create(new_job())
    store.claim("j1", "a", NOW, NOW + 1000)
    store.mark_running("j1", 1, NOW)
    store.claim("j1", "b", NOW + 2000, NOW + 9000)  # the first runner died; its lease ran out
    again = store.mark_running("j1", 2, NOW + 2001)
    assert again is not None and again.started_at == NOW + 2001
    assert store.mark_running("j1", 1, NOW + 2002) is None


def test_the_running_attempt_records_its_prompt(store: JobStore) -> None:
    store.create(new_job())
    store.claim("j1", "r", NOW, NOW + 1000)
    running = store.mark_running("j1", 1, NOW, prompt_id="p-1")
    assert running is not None and running.prompt_id == "p-1"


def test_the_workflow_is_stored_deflated_and_read_back_whole(store: JobStore, moto_aws: Any) -> None:
    workflow = {
        str(i): {"class_type": "CLIPTextEncode", "inputs": {"text": "a lighthouse " * 5}} for i in range(20)
    }
    store.create(new_job().model_copy(update={"workflow": workflow}))
    clients, resources = moto_aws
    raw = clients.dynamodb.get_item(TableName=resources.jobs_table, Key={"job_id": {"S": "j1"}})["Item"]
    assert "B" in raw["workflow"] and len(raw["workflow"]["B"]) < len(json.dumps(workflow)) / 4
    assert store.get("j1").workflow == workflow  # type: ignore[union-attr]
