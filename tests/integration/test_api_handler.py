"""The REST API's Lambda handler called in-process with real API Gateway proxy events, over moto."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.conftest import ApiCall


def test_submit_answers_202_with_a_receipt_and_location(
    api: ApiCall, simple_workflow: dict[str, Any], moto_aws: Any
) -> None:
    answer = api("POST", "/v1/jobs", {"workflow": simple_workflow, "metadata": {"user": "u1"}})
    assert answer.status == 202
    job_id = answer.body["job_id"]
    assert answer.headers["location"] == f"/v1/jobs/{job_id}"
    assert answer.body["status"] == "queued" and answer.body["metadata"] == {"user": "u1"}
    clients, resources = moto_aws
    messages = clients.sqs.receive_message(QueueUrl=resources.queue_url, MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(m["Body"]) for m in messages] == [{"v": 1, "job_id": job_id}]


def test_the_same_key_and_body_replays_the_first_answer_and_makes_one_job(
    api: ApiCall, simple_workflow: dict[str, Any], moto_aws: Any
) -> None:
    headers = {"Idempotency-Key": "order-42"}
    first = api("POST", "/v1/jobs", {"workflow": simple_workflow}, headers)
    # The same JSON with another key order is the same request.
    reordered = {"workflow": dict(reversed(list(simple_workflow.items())))}
    second = api("POST", "/v1/jobs", reordered, headers)
    assert second.status == first.status == 202
    assert second.body == first.body
    assert second.headers.get("idempotent-replayed") == "true"
    assert "idempotent-replayed" not in first.headers
    clients, resources = moto_aws
    assert clients.dynamodb.scan(TableName=resources.jobs_table)["Count"] == 1


def test_the_same_key_with_another_body_is_a_422_that_sends_and_writes_nothing(
    api: ApiCall, simple_workflow: dict[str, Any], moto_aws: Any
) -> None:
    first = api("POST", "/v1/jobs", {"workflow": simple_workflow}, {"Idempotency-Key": "k"})
    changed = json.loads(json.dumps(simple_workflow))
    changed["1"]["inputs"]["width"] = 128
    answer = api("POST", "/v1/jobs", {"workflow": changed}, {"Idempotency-Key": "k"})
    assert answer.status == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.body["type"].endswith("idempotency-key-reused")
    assert first.body["job_id"] in answer.body["detail"]
    assert answer.body["errors"][0]["pointer"] == "header:Idempotency-Key"
    clients, resources = moto_aws
    assert clients.dynamodb.scan(TableName=resources.jobs_table)["Count"] == 1
    messages = clients.sqs.receive_message(QueueUrl=resources.queue_url, MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(m["Body"])["job_id"] for m in messages] == [first.body["job_id"]]


def test_keys_are_scoped_to_their_owner(api: ApiCall, simple_workflow: dict[str, Any]) -> None:
    a = api("POST", "/v1/jobs", {"workflow": simple_workflow}, {"Idempotency-Key": "k"}, owner="a")
    b = api("POST", "/v1/jobs", {"workflow": simple_workflow}, {"Idempotency-Key": "k"}, owner="b")
    assert a.body["job_id"] != b.body["job_id"]
    assert "idempotent-replayed" not in b.headers


def test_another_owners_job_is_not_found(api: ApiCall, simple_workflow: dict[str, Any]) -> None:
    job_id = api("POST", "/v1/jobs", {"workflow": simple_workflow}, owner="a").body["job_id"]
    assert api("GET", f"/v1/jobs/{job_id}", owner="a").status == 200
    for method in ("GET", "DELETE"):
        answer = api(method, f"/v1/jobs/{job_id}", owner="b")
        assert answer.status == 404
        assert answer.body["type"].endswith("job-not-found")


def test_ui_format_is_refused_with_a_hint(api: ApiCall) -> None:
    ui = {"nodes": [{"id": 1, "type": "SaveImage"}], "links": [], "version": 0.4}
    for body in (ui, {"workflow": ui}):
        answer = api("POST", "/v1/jobs", body)
        assert answer.status == 422
        assert "Export (API)" in answer.body["detail"]


def test_a_broken_link_names_node_and_input(api: ApiCall) -> None:
    graph = {"3": {"class_type": "SaveImage", "inputs": {"images": ["9", 0]}}}
    answer = api("POST", "/v1/jobs", {"workflow": graph})
    assert answer.status == 422
    assert answer.body["errors"] == [
        {
            "pointer": "/workflow/3/inputs/images",
            "detail": "input 'images' links to node '9', which does not exist",
            "node_id": "3",
            "input": "images",
        }
    ]


@pytest.mark.parametrize(
    ("raw", "hint"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "valid dictionary"),
        (b'{"prompt": {"1": {"class_type": "X", "inputs": {}}}}', "not 'prompt'"),
        (b'{"1": {"class_type": "X", "inputs": {}}}', "bare graph"),
        (b'{"workflow": {"1": {"class_type": "X", "inputs": {}}}, "extra": 1}', "Extra inputs"),
    ],
)
def test_malformed_bodies_get_a_problem_that_says_what_is_wrong(api: ApiCall, raw: bytes, hint: str) -> None:
    answer = api("POST", "/v1/jobs", raw=raw)
    assert answer.status == 422, answer.body
    assert hint in json.dumps(answer.body)


def test_limits_are_enforced(api: ApiCall, simple_workflow: dict[str, Any]) -> None:
    big = api("POST", "/v1/jobs", raw=b'{"workflow": {}, "pad": "' + b"x" * 1_100_000 + b'"}')
    assert big.status == 413
    meta = api("POST", "/v1/jobs", {"workflow": simple_workflow, "metadata": {"x": "y" * 5000}})
    assert meta.status == 422 and meta.body["errors"][0]["pointer"] == "/metadata"
    bad_key = api("POST", "/v1/jobs", {"workflow": simple_workflow}, {"Idempotency-Key": "x" * 300})
    assert bad_key.status == 422


def test_unknown_routes_and_methods_are_problems(api: ApiCall) -> None:
    assert api("GET", "/v1/nothing").status == 404
    assert api("PUT", "/v1/jobs").status == 405


def test_cancel_a_queued_job_then_409(api: ApiCall, simple_workflow: dict[str, Any]) -> None:
    job_id = api("POST", "/v1/jobs", {"workflow": simple_workflow}).body["job_id"]
    canceled = api("DELETE", f"/v1/jobs/{job_id}")
    assert canceled.status == 202 and canceled.body["status"] == "canceled"
    assert api("DELETE", f"/v1/jobs/{job_id}").status == 409


def test_health(api: ApiCall) -> None:
    answer = api("GET", "/v1/health")
    assert answer.status == 200 and answer.body["status"] == "ok"


def test_openapi_is_served(api: ApiCall) -> None:
    answer = api("GET", "/v1/openapi.json")
    assert answer.status == 200
    assert "/v1/jobs" in answer.body["paths"]


@pytest.fixture
def large_workflow(api: ApiCall, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A graph over the inline limit (lowered to 1 KiB), so that the API keeps it in S3."""
    from functions.api import context

    monkeypatch.setenv("INLINE_WORKFLOW_MAX_BYTES", "1024")
    context.default_context.cache_clear()
    return {str(i): {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8}} for i in range(40)}


def test_a_large_workflow_lives_in_s3_and_the_runner_view_reads_it(
    api: ApiCall, moto_aws: Any, large_workflow: dict[str, Any]
) -> None:
    from shared.aws.jobs import JobStore

    graph = large_workflow
    answer = api("POST", "/v1/jobs", {"workflow": graph})
    assert answer.status == 202
    clients, resources = moto_aws
    job = JobStore(clients.dynamodb, resources.jobs_table).get(answer.body["job_id"])
    assert job is not None and job.workflow is None and job.workflow_s3_key
    stored = clients.s3.get_object(Bucket=resources.bucket, Key=job.workflow_s3_key)["Body"].read()
    assert json.loads(stored) == graph


def test_a_refused_or_replayed_large_workflow_leaves_no_object_behind(
    api: ApiCall, moto_aws: Any, large_workflow: dict[str, Any]
) -> None:
    from shared.aws.jobs import JobStore
    from shared.names import S3Prefix

    graph = large_workflow
    other = {**graph, "40": {"class_type": "EmptyImage", "inputs": {"width": 9, "height": 9}}}
    key = {"Idempotency-Key": "big-one"}
    first = api("POST", "/v1/jobs", {"workflow": graph}, key)
    replay = api("POST", "/v1/jobs", {"workflow": graph}, key)
    refused = api("POST", "/v1/jobs", {"workflow": other}, key)
    assert (first.status, replay.status, refused.status) == (202, 202, 422)

    clients, resources = moto_aws
    listed = clients.s3.list_objects_v2(Bucket=resources.bucket, Prefix=f"{S3Prefix.WORKFLOWS}/")
    keys = [item["Key"] for item in listed.get("Contents", [])]
    job = JobStore(clients.dynamodb, resources.jobs_table).get(first.body["job_id"])
    assert job is not None and keys == [job.workflow_s3_key]


def test_a_dependency_outage_is_a_503_never_a_500(
    api: ApiCall, simple_workflow: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from functions.api import context

    monkeypatch.setenv("INLINE_WORKFLOW_MAX_BYTES", "1024")
    monkeypatch.setenv("BUCKET_NAME", "no-such-bucket")
    monkeypatch.setenv("JOBS_TABLE_NAME", "no-such-table")
    context.default_context.cache_clear()
    big = {str(i): {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8}} for i in range(40)}
    for body in ({"workflow": big}, {"workflow": simple_workflow}):
        answer = api("POST", "/v1/jobs", body)
        assert answer.status == 503, answer.body
        assert answer.headers["retry-after"] == "1"
        assert answer.body["type"].endswith("service-unavailable")
    assert api("GET", "/v1/jobs/some-job").status == 503


def test_an_aws_service_that_does_not_answer_is_a_503_never_a_500(
    api: ApiCall, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import EndpointConnectionError

    from functions.api import context

    def unreachable(*args: Any, **kwargs: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com")

    monkeypatch.setattr(context.default_context().store, "get", unreachable)
    answer = api("GET", "/v1/jobs/some-job")
    assert answer.status == 503, answer.body
    assert answer.headers["retry-after"] == "1"
    assert "EndpointConnectionError" in answer.body["detail"]


def test_a_submit_that_prefers_a_websocket_gets_its_url_with_a_token(
    api: ApiCall, simple_workflow: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WS_TOKEN_SECRET", "s")
    monkeypatch.setenv("WEBSOCKET_URL", "ws://127.0.0.1:1/local")
    asked = api("POST", "/v1/jobs", {"workflow": simple_workflow}, {"Prefer": "websocket"})
    assert asked.status == 202
    assert asked.headers["websocket-url"].startswith("ws://127.0.0.1:1/local?token=")
    assert asked.headers["preference-applied"] == "websocket"
    plain = api("POST", "/v1/jobs", {"workflow": simple_workflow})
    assert "websocket-url" not in plain.headers and "preference-applied" not in plain.headers


def test_without_a_websocket_api_the_preference_is_not_applied(
    api: ApiCall, simple_workflow: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WS_TOKEN_SECRET", "s")
    monkeypatch.delenv("WEBSOCKET_URL", raising=False)
    answer = api("POST", "/v1/jobs", {"workflow": simple_workflow}, {"Prefer": "websocket, wait=0"})
    assert answer.status in (200, 202)
    assert "websocket-url" not in answer.headers
    assert answer.headers["preference-applied"] == "wait=0"
