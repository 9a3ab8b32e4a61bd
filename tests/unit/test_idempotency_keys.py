"""The job id an Idempotency-Key names, and the fingerprint a replay is matched on: pure functions."""

from __future__ import annotations

import uuid

from functions.api.idempotency import as_first_given, keyed_job_id, request_fingerprint
from shared.models import Job, JobStatus, JobWebhook, OutputFile


def test_a_key_names_one_job_per_owner_and_generation() -> None:
    first = keyed_job_id("tenant-a", "order-42", 0)
    assert first == keyed_job_id("tenant-a", "order-42", 0)
    others = {
        keyed_job_id("tenant-b", "order-42", 0),
        keyed_job_id("tenant-a", "order-43", 0),
        keyed_job_id("tenant-a", "order-42", 1),
        # No ambiguity where the parts meet.
        keyed_job_id("tenant-a#order", "42", 0),
    }
    assert first not in others and len(others) == 4
    parsed = uuid.UUID(first)
    assert str(parsed) == first and parsed.version == 8 and parsed.variant == uuid.RFC_4122


def test_the_fingerprint_ignores_key_order_and_sees_every_value() -> None:
    body = {"workflow": {"1": {"class_type": "X", "inputs": {"a": 1, "b": "é"}}}, "metadata": None}
    reordered = {"metadata": None, "workflow": {"1": {"inputs": {"b": "é", "a": 1}, "class_type": "X"}}}
    assert request_fingerprint("POST", "/v1/jobs", body) == request_fingerprint("POST", "/v1/jobs", reordered)
    changed = {**body, "metadata": {"a": 1}}
    assert request_fingerprint("POST", "/v1/jobs", body) != request_fingerprint("POST", "/v1/jobs", changed)
    assert len(request_fingerprint("POST", "/v1/jobs", body)) == 43


def test_a_replay_sees_the_job_as_it_was_created() -> None:
    ran = Job(
        job_id="j",
        owner="o",
        status=JobStatus.SUCCEEDED,
        created_at=1_000,
        updated_at=9_000,
        started_at=2_000,
        finished_at=9_000,
        deadline=5_000,
        attempt=2,
        progress=100,
        outputs=[OutputFile(node_id="3", filename="a.png", key="k", content_type="image/png", size=1)],
        metadata={"m": 1},
        template="txt2img",
        params={"seed": 7},
        pool="big",
        lane="priority",
        webhook=JobWebhook(url="https://example.com/h", events=["job.succeeded"]),
        gpu_seconds=3.5,
        request_hash="h",
        key_expires_at=99,
    )
    created = as_first_given(ran)
    assert created == Job(
        job_id="j",
        owner="o",
        created_at=1_000,
        updated_at=1_000,
        deadline=5_000,
        metadata={"m": 1},
        template="txt2img",
        params={"seed": 7},
        pool="big",
        lane="priority",
        webhook=JobWebhook(url="https://example.com/h", events=["job.succeeded"]),
    )
