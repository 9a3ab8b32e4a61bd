"""Templates, uploads, listing with cursors, and Prefer: wait, through the API handler over moto."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests

from tests.integration.conftest import ApiCall


def test_templates_are_listed_with_their_schemas(api: ApiCall) -> None:
    listing = api("GET", "/v1/templates")
    assert listing.status == 200
    names = {item["name"] for item in listing.body["items"]}
    assert {"txt2img", "img2img"} <= names
    one = api("GET", "/v1/templates/txt2img")
    assert one.body["parameters"]["properties"]["steps"]["maximum"] == 150
    missing = api("GET", "/v1/templates/nope")
    assert missing.status == 404 and "txt2img" in missing.body["detail"]


def test_a_template_job_records_its_params_and_seed(api: ApiCall, moto_aws: Any) -> None:
    answer = api("POST", "/v1/jobs", {"template": "txt2img", "params": {"prompt": "a fox", "steps": 4}})
    assert answer.status == 202
    assert answer.body["template"] == "txt2img"
    assert answer.body["params"]["steps"] == 4 and isinstance(answer.body["params"]["seed"], int)
    from shared.aws.jobs import JobStore

    clients, resources = moto_aws
    job = JobStore(clients.dynamodb, resources.jobs_table).get(answer.body["job_id"])
    assert job is not None and job.workflow is not None
    assert job.workflow["6"]["inputs"]["text"] == "a fox"
    assert job.workflow["3"]["inputs"]["seed"] == answer.body["params"]["seed"]


def test_bad_params_are_each_named(api: ApiCall) -> None:
    answer = api("POST", "/v1/jobs", {"template": "txt2img", "params": {"steps": 0, "width": "wide"}})
    assert answer.status == 422
    pointers = {error["pointer"] for error in answer.body["errors"]}
    assert pointers == {"/params/prompt", "/params/steps", "/params/width"}


def test_workflow_and_template_together_is_refused(api: ApiCall, simple_workflow: dict[str, Any]) -> None:
    answer = api("POST", "/v1/jobs", {"workflow": simple_workflow, "template": "txt2img"})
    assert answer.status == 422 and "not both" in answer.body["detail"]


def test_an_upload_round_trip_and_its_checks(api: ApiCall) -> None:
    ticket = api("POST", "/v1/uploads", {"content_type": "image/png", "filename": "cat.png"})
    assert ticket.status == 201
    body = ticket.body
    assert body["ref"] == f"upload://{body['upload_id']}" and body["fields"]["Content-Type"] == "image/png"
    graph = {
        "1": {"class_type": "LoadImage", "inputs": {"image": body["ref"]}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}},
    }
    # Not uploaded yet: the job cannot use it.
    early = api("POST", "/v1/jobs", {"workflow": graph})
    assert early.status == 422 and early.body["errors"][0]["pointer"] == "/workflow/1/inputs/image"
    form = requests.post(body["url"], data=body["fields"], files={"file": b"\x89PNG fake"}, timeout=10)
    assert form.status_code == 204
    assert api("POST", "/v1/jobs", {"workflow": graph}).status == 202
    # Another owner cannot use it.
    foreign = api("POST", "/v1/jobs", {"workflow": graph}, owner="someone-else")
    assert foreign.status == 422
    bad_type = api("POST", "/v1/uploads", {"content_type": "application/x-sh"})
    assert bad_type.status == 422 and bad_type.body["errors"][0]["pointer"] == "/content_type"


def test_listing_pages_newest_first_per_owner(api: ApiCall, simple_workflow: dict[str, Any]) -> None:
    mine = [
        api("POST", "/v1/jobs", {"workflow": simple_workflow}, owner="lister").body["job_id"]
        for _ in range(7)
    ]
    for _ in range(3):
        api("POST", "/v1/jobs", {"workflow": simple_workflow}, owner="other")
    api("DELETE", f"/v1/jobs/{mine[0]}", owner="lister")
    seen: list[str] = []
    cursor = None
    while True:
        page = api("GET", "/v1/jobs?limit=3" + (f"&cursor={cursor}" if cursor else ""), owner="lister")
        assert page.status == 200 and len(page.body["items"]) <= 3
        seen += [job["job_id"] for job in page.body["items"]]
        cursor = page.body["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(mine))
    canceled = api("GET", "/v1/jobs?status=canceled&limit=2", owner="lister")
    assert [job["job_id"] for job in canceled.body["items"]] == [mine[0]]
    assert canceled.body["next_cursor"] is None


def test_a_cursor_cannot_read_another_owners_jobs(api: ApiCall, simple_workflow: dict[str, Any]) -> None:
    for _ in range(3):
        api("POST", "/v1/jobs", {"workflow": simple_workflow}, owner="victim")
    cursor = api("GET", "/v1/jobs?limit=1", owner="victim").body["next_cursor"]
    assert cursor
    stolen = api("GET", f"/v1/jobs?limit=5&cursor={cursor}", owner="thief")
    assert stolen.status == 422
    forged = api("GET", "/v1/jobs?limit=5&cursor=abc.def", owner="victim")
    assert forged.status == 422
    assert api("GET", "/v1/jobs?limit=0").status == 422 and api("GET", "/v1/jobs?status=nope").status == 422


def test_prefer_wait_answers_with_the_current_state_when_time_is_up(
    api: ApiCall, simple_workflow: dict[str, Any]
) -> None:
    started = time.monotonic()
    answer = api("POST", "/v1/jobs", {"workflow": simple_workflow}, {"Prefer": "wait=1"})
    assert time.monotonic() - started >= 1.0  # no runner here: it waited the whole second
    assert answer.status == 202 and answer.body["status"] == "queued"
    assert answer.headers["preference-applied"] == "wait=1"
    job_id = answer.body["job_id"]
    api("DELETE", f"/v1/jobs/{job_id}")
    finished = api("GET", f"/v1/jobs/{job_id}", headers={"Prefer": "wait=5"})
    assert finished.status == 200 and finished.body["status"] == "canceled"
    assert api("GET", f"/v1/jobs/{job_id}", headers={"Prefer": "wait=60"}).status == 422


def test_a_tenant_totals_its_gpu_cost_over_a_period(
    api: ApiCall, simple_workflow: dict[str, Any], moto_aws: Any
) -> None:
    from shared.aws.jobs import JobStore
    from shared.gpu_cost import gpu_cost
    from shared.models import JobStatus, JobTimings

    clients, resources = moto_aws
    store = JobStore(clients.dynamodb, resources.jobs_table)
    ids = [
        api("POST", "/v1/jobs", {"workflow": simple_workflow}, owner="payer").body["job_id"] for _ in range(3)
    ]
    api("POST", "/v1/jobs", {"workflow": simple_workflow}, owner="other")
    for seconds, job_id in zip((10, 20), ids, strict=False):  # the third never ran: it costs nothing
        store.claim(job_id, "r", 1, 2_000_000_000_000)
        cost = gpu_cost(JobTimings(execution_ms=seconds * 1000), price_per_hour=3.6)
        store.finish(job_id, 1, JobStatus.SUCCEEDED, 2, outputs=[], cost=cost)
    yesterday = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 86_400))
    total = api("GET", f"/v1/jobs/gpu-cost?since={yesterday}", owner="payer")
    assert total.status == 200, total.body
    assert (total.body["jobs"], total.body["gpu_seconds"]) == (3, 30.0)
    assert total.body["gpu_cost_usd"] == pytest.approx(0.03)
    empty = api(
        "GET", "/v1/jobs/gpu-cost?since=2020-01-01T00:00:00Z&until=2020-01-02T00:00:00Z", owner="payer"
    )
    assert (empty.status, empty.body["jobs"], empty.body["gpu_cost_usd"]) == (200, 0, 0.0)


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("since=2020-01-01T00:00:00Z&until=2020-03-01T00:00:00Z", "longer than 31 days"),
        ("since=2020-01-02T00:00:00Z&until=2020-01-01T00:00:00Z", "ends before it starts"),
        ("since=yesterday", "since"),
    ],
)
def test_a_bad_period_is_a_422_that_says_why(api: ApiCall, query: str, says: str) -> None:
    answer = api("GET", f"/v1/jobs/gpu-cost?{query}")
    assert answer.status == 422
    assert says in json.dumps(answer.body)
