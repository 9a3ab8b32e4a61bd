"""Pools, lanes and tier limits through the API handler, over moto in-process: where a job's message
goes, what is refused, and that a tenant's count of jobs in flight comes down whoever ends a job."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.aws.in_flight import InFlightJobs
from shared.aws.jobs import JobStore
from shared.aws.queue import JobQueue
from shared.aws.tenants import Tenant, TenantStore
from shared.models import ErrorCode, JobError, JobStatus
from shared.pools import PoolRoute, pool_routes_json
from tests.integration.conftest import ApiCall

SDXL = "sd_xl_base_1.0.safetensors"


@pytest.fixture
def pools(moto_aws: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A "big" pool holding SDXL, with a priority lane, a "parked" one with no runners; free tier: 2 jobs,
    pro tier: the priority lane and 50 jobs; the open tier has no policy."""
    from functions.api import context

    clients, resources = moto_aws
    urls = {
        name: clients.sqs.create_queue(QueueName=f"pool-{name}")["QueueUrl"]
        for name in ("big", "big-priority", "parked")
    }
    routes = [
        PoolRoute("default", resources.queue_url),
        PoolRoute(
            "big", urls["big"], urls["big-priority"], models=frozenset({("checkpoints", SDXL)}), max_runners=4
        ),
        PoolRoute("parked", urls["parked"], max_runners=0),
    ]
    monkeypatch.setenv("POOL_ROUTES", pool_routes_json(routes))
    monkeypatch.setenv(
        "TIER_POLICIES",
        json.dumps({"free": {"maxJobsInFlight": 2}, "pro": {"priority": True, "maxJobsInFlight": 50}}),
    )
    monkeypatch.setenv("TIER_LIMIT_RETRY_AFTER_SECONDS", "7")
    context.default_context.cache_clear()
    tenants = TenantStore(clients.dynamodb, resources.tenants_table)
    tenants.create_tenant(Tenant("free-co", "Free Co", "free", 0))
    tenants.create_tenant(Tenant("pro-co", "Pro Co", "pro", 0))
    tenants.create_tenant(Tenant("open-co", "Open Co", "open", 0))
    return {**urls, "default": resources.queue_url}


def _messages(moto_aws: Any, url: str) -> list[dict[str, Any]]:
    clients, _ = moto_aws
    return clients.sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
    ).get("Messages", [])


def _sdxl(simple: dict[str, Any]) -> dict[str, Any]:
    return {**simple, "9": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": SDXL}}}


def test_a_job_naming_a_pools_model_goes_to_that_pools_queue_grouped_by_its_tenant(
    api: ApiCall, pools: dict[str, str], moto_aws: Any, simple_workflow: dict[str, Any]
) -> None:
    answer = api("POST", "/v1/jobs", {"workflow": _sdxl(simple_workflow)}, owner="pro-co")
    assert answer.status == 202 and answer.body["pool"] == "big"
    # A pro tenant's job takes the pool's priority lane; the standard lane and the default pool get nothing.
    [message] = _messages(moto_aws, pools["big-priority"])
    assert json.loads(message["Body"])["job_id"] == answer.body["job_id"]
    assert message["Attributes"]["MessageGroupId"] == "pro-co"
    assert _messages(moto_aws, pools["big"]) == [] and _messages(moto_aws, pools["default"]) == []


def test_an_unknown_empty_or_idle_pool_is_a_422_that_names_it(
    api: ApiCall, pools: dict[str, str], simple_workflow: dict[str, Any]
) -> None:
    for pool, says in [("gpu-xl", "no such pool"), ("parked", "has no runners"), ("", "at least 1")]:
        answer = api("POST", "/v1/jobs", {"workflow": simple_workflow, "pool": pool}, owner="pro-co")
        assert answer.status == 422, answer.body
        assert answer.body["errors"][0]["pointer"] == "/pool" and says in json.dumps(answer.body)


def test_the_tier_limit_is_a_429_until_a_job_ends_and_a_retry_replays(
    api: ApiCall, pools: dict[str, str], simple_workflow: dict[str, Any]
) -> None:
    first = api("POST", "/v1/jobs", {"workflow": simple_workflow}, {"Idempotency-Key": "k1"}, owner="free-co")
    api("POST", "/v1/jobs", {"workflow": simple_workflow}, owner="free-co")
    refused = api("POST", "/v1/jobs", {"workflow": simple_workflow}, owner="free-co")
    assert refused.status == 429 and refused.headers["retry-after"] == "7"
    assert refused.body["type"].endswith("too-many-jobs-in-flight") and "2 jobs" in refused.body["detail"]
    # The retry of a request that was accepted is its first answer, not a refusal.
    again = api("POST", "/v1/jobs", {"workflow": simple_workflow}, {"Idempotency-Key": "k1"}, owner="free-co")
    assert again.status == 202 and again.body["job_id"] == first.body["job_id"]
    # Another tenant is not held to this one's count.
    assert api("POST", "/v1/jobs", {"workflow": simple_workflow}, owner="pro-co").status == 202
    # Canceling one brings the count down: the next one is taken.
    assert api("DELETE", f"/v1/jobs/{first.body['job_id']}", owner="free-co").status == 202
    assert api("POST", "/v1/jobs", {"workflow": simple_workflow}, owner="free-co").status == 202


def test_every_way_a_job_ends_brings_its_tenants_count_down(
    api: ApiCall, pools: dict[str, str], moto_aws: Any, simple_workflow: dict[str, Any]
) -> None:
    clients, resources = moto_aws
    store = JobStore(clients.dynamodb, resources.jobs_table)
    in_flight = InFlightJobs(clients.dynamodb, resources.jobs_table)
    ids = [
        api("POST", "/v1/jobs", {"workflow": simple_workflow}, owner="pro-co").body["job_id"]
        for _ in range(5)
    ]
    assert in_flight.count("pro-co", up_to=10) == 5
    claimed = [store.claim(job_id, "runner", 1, 2) for job_id in ids[:3]]
    assert all(claimed)
    # The runner ends one, expires one, the dead-letter function fails one, the API cancels one.
    store.finish(ids[0], 1, JobStatus.SUCCEEDED, 3, outputs=[])
    store.expire(ids[1], 1, 3)
    store.fail_if_active(ids[2], JobError(code=ErrorCode.MAX_ATTEMPTS_EXCEEDED, message="dead-lettered"), 3)
    store.cancel_queued(ids[3], "pro-co", 3)
    assert in_flight.count("pro-co", up_to=10) == 1
    # Ending it twice changes nothing: a terminal job is never counted again.
    assert store.finish(ids[0], 1, JobStatus.FAILED, 4) is None
    assert in_flight.count("pro-co", up_to=10) == 1


def test_only_a_tier_with_a_limit_counts_its_jobs_in_flight(
    api: ApiCall, pools: dict[str, str], moto_aws: Any, simple_workflow: dict[str, Any]
) -> None:
    clients, resources = moto_aws
    store = JobStore(clients.dynamodb, resources.jobs_table)
    limited = api("POST", "/v1/jobs", {"workflow": simple_workflow}, owner="pro-co").body["job_id"]
    unlimited = api("POST", "/v1/jobs", {"workflow": simple_workflow}, owner="open-co").body["job_id"]
    assert store.get(limited).in_flight == "pro-co"  # type: ignore[union-attr]
    # No limit: no attribute, so the job never writes the in-flight index.
    assert store.get(unlimited).in_flight is None  # type: ignore[union-attr]
    assert InFlightJobs(clients.dynamodb, resources.jobs_table).count("open-co", up_to=10) == 0


def test_a_fair_queue_offers_the_tenant_with_fewest_in_flight_first(moto_aws: Any) -> None:
    from local import fair_queues

    fair_queues.install()
    clients, resources = moto_aws
    queue = JobQueue(clients.sqs, resources.queue_url)
    for n in range(4):
        queue.send(f"a-{n}", group_id="alice")
    queue.send("b-0", group_id="bob")
    taken = [m.parse().job_id for m in queue.receive(1, 0, 30) + queue.receive(1, 0, 30)]
    assert taken == ["a-0", "b-0"]
