"""Two pools on one local stack: the default pool (one runner) and a Spot pool of two simulated instances
that holds the SDXL checkpoint. Tenants share the default pool fairly within their tier's limit; a job
naming the SDXL checkpoint runs in the Spot pool and survives a Spot interruption notice."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import requests

from tests.e2e.conftest import Stack, start_stack, stop_stack, wait_for
from tests.pools_example import IN_FLIGHT_LIMIT, POOLS, SPOT_MODEL, TIER_POLICIES

# Three runners and three simulators start before the first test: more than the default limit allows
# on a busy machine.
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def pools_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(
        tmp_path_factory.mktemp("pools"),
        RUNNERS="1",
        POOLS=POOLS,
        TIER_POLICIES=TIER_POLICIES,
        # One receive per message: a job whose interruption counted against it would go to the DLQ.
        MAX_RECEIVE_COUNT="1",
    )
    yield running
    stop_stack(running)


def _txt2img(client: requests.Session, stack: Stack, steps: int, **params: Any) -> requests.Response:
    body: dict[str, Any] = {
        "template": "txt2img",
        "params": {"prompt": "a lighthouse", "steps": steps, **params},
    }
    return client.post(f"{stack.rest_url}/v1/jobs", json=body, timeout=10)


def _started(job: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(job["started_at"])


def test_two_tenants_share_a_pool_fairly_within_their_tier_limit(pools_stack: Stack) -> None:
    alice, bob = pools_stack.client(0), pools_stack.client(1)
    # Alice fills her tier's jobs in flight; each runs about 2 s on the default pool's one runner.
    alice_jobs = [_txt2img(alice, pools_stack, 40) for _ in range(IN_FLIGHT_LIMIT)]
    # Bob's one job, sent after all of Alice's, does not wait behind her backlog.
    bob_job = _txt2img(bob, pools_stack, 4)
    assert [r.status_code for r in [*alice_jobs, bob_job]] == [202] * (IN_FLIGHT_LIMIT + 1)
    refused = _txt2img(alice, pools_stack, 40)
    assert refused.status_code == 429, refused.text
    assert refused.headers["Retry-After"].isdigit()
    assert refused.json()["type"].endswith("too-many-jobs-in-flight")
    done = [wait_for(alice, pools_stack.rest_url + r.headers["Location"], 40) for r in alice_jobs]
    bobs = wait_for(bob, pools_stack.rest_url + bob_job.headers["Location"], 40)
    assert all(job["status"] == "succeeded" and job["pool"] == "default" for job in [*done, bobs])
    # One runner, prefetch 1: Alice's first runs, her second waits in ComfyUI's queue, and Bob's is
    # taken before her third because her group has two messages in flight and his none.
    assert _started(bobs) < _started(done[-1]), (bobs["started_at"], [j["started_at"] for j in done])
    # Her jobs ended, so her count came back down: she may submit again.
    assert _txt2img(alice, pools_stack, 1).status_code == 202


def test_a_job_routed_by_its_model_survives_a_spot_interruption_with_one_output_set(
    pools_stack: Stack,
) -> None:
    client = pools_stack.client(1)
    receipt = _txt2img(client, pools_stack, 60, checkpoint=SPOT_MODEL)
    assert receipt.status_code == 202, receipt.text
    assert receipt.json()["pool"] == "spot"
    url = pools_stack.rest_url + receipt.headers["Location"]
    running = wait_for(client, url, 30, until={"running", "succeeded", "failed"})
    assert running["status"] == "running", running
    instances = pools_stack.endpoints["pools"]["spot"]["runners"]
    busy = [
        i for i in instances if requests.get(i["comfyui_url"] + "/queue", timeout=5).json()["queue_running"]
    ]
    assert len(busy) == 1, busy
    # EC2's two-minute notice on the instance running it.
    assert requests.post(busy[0]["imds_url"] + "/local/spot-interruption", timeout=5).status_code == 204

    job = wait_for(client, url, 60)
    assert job["status"] == "succeeded", job
    assert job["attempts"] == 2
    [output] = job["outputs"]
    assert f"/{job['job_id']}/2/" in requests.utils.urlparse(output["url"]).path
    # The second attempt ran on the other instance, whose ComfyUI has it in its history.
    other = next(i for i in instances if i is not busy[0])
    assert requests.get(other["comfyui_url"] + "/history", timeout=5).json()
