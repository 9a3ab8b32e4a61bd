"""The public front door of one local stack: schemathesis fuzzing the OpenAPI document (stateful too), hostile
and careless requests as a new user or an attacker sends them, and the docs page in a real browser."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from functions.api.routes.jobs import JOB_LINKS
from local.stack import api_key_id
from shared.names import BUCKET_NAME, S3Prefix
from tests.e2e.conftest import Stack, start_stack, stop_stack

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    ]
)
# Small enough that the hostile test's large workflow goes to S3.
INLINE_WORKFLOW_MAX_BYTES = 1024


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(
        tmp_path_factory.mktemp("front-door"),
        RUNNERS="1",
        INLINE_WORKFLOW_MAX_BYTES=str(INLINE_WORKFLOW_MAX_BYTES),
    )
    yield running
    stop_stack(running)


@pytest.mark.timeout(300)
def test_the_openapi_holds_under_fuzzing_and_stateful_links(stack: Stack, tmp_path: Path) -> None:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        # The document is public: no key is needed to read it, only to call the API.
        f"{stack.rest_url}/v1/openapi.json",
        "--header",
        f"x-api-key: {stack.endpoints['api_keys'][0]}",
        "--checks",
        CHECKS,
        "--max-examples",
        "20",
        "--generation-deterministic",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--workers",
        "1",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=280, cwd=tmp_path)
    report = result.stdout + result.stderr
    assert "API Operations" in report, report[-3000:]
    assert result.returncode == 0, report[-6000:]
    # The stateful phase ran the links: submit, then read, list and cancel the job it made.
    links = re.search(r"API Links:\s+(\d+) covered", report)
    assert links is not None and int(links.group(1)) >= len(JOB_LINKS), report[-3000:]


def deep(depth: int) -> str:
    return '{"k":' * depth + "1" + "}" * depth


def send(stack: Stack, raw: str | bytes, content_type: str | None = "application/json") -> requests.Response:
    session = stack.client()
    headers = {"Content-Type": content_type} if content_type else {}
    body = raw.encode() if isinstance(raw, str) else raw
    return session.post(f"{stack.rest_url}/v1/jobs", data=body, headers=headers, timeout=30)


def test_hostile_and_careless_requests_get_a_problem_that_says_where(
    stack: Stack, simple_workflow: dict[str, Any]
) -> None:
    graph = json.dumps(simple_workflow)
    cyclic = {
        "1": {"class_type": "A", "inputs": {"x": ["2", 0]}},
        "2": {"class_type": "B", "inputs": {"y": ["1", 0]}},
    }
    cases: list[tuple[str, str, int, str]] = [
        ("deep metadata", f'{{"workflow": {graph}, "metadata": {deep(600)}}}', 422, "/metadata/k/k"),
        (
            "deep input",
            '{"workflow": {"1": {"class_type": "X", "inputs": {"v": ' + deep(990) + "}}}}",
            422,
            "/workflow/1/inputs/v",
        ),
        ("NaN metadata", f'{{"workflow": {graph}, "metadata": {{"x": NaN}}}}', 422, "/metadata/x"),
        (
            "1e400 input",
            '{"workflow": {"1": {"class_type": "X", "inputs": {"cfg": 1e400}}}}',
            422,
            "/workflow/1/inputs/cfg",
        ),
        (
            "Infinity param",
            '{"template": "txt2img", "params": {"prompt": "p", "cfg": Infinity}}',
            422,
            "/params/cfg",
        ),
        ("cycle", json.dumps({"workflow": cyclic}), 422, "/workflow/1"),
        (
            "numeric link",
            json.dumps({"workflow": {"1": {"class_type": "A", "inputs": {"x": [1, 0]}}}}),
            422,
            "/workflow/1/inputs/x",
        ),
        (
            "path node id",
            json.dumps({"workflow": {"../../key-bob/evil": {"class_type": "SaveImage", "inputs": {}}}}),
            422,
            "/workflow/..~1..~1key-bob~1evil",
        ),
        (
            "long node id",
            json.dumps({"workflow": {"x" * 1500: {"class_type": "SaveImage", "inputs": {}}}}),
            422,
            "/workflow/" + "x" * 1500,
        ),
    ]
    for name, raw, status, pointer in cases:
        answer = send(stack, raw)
        assert answer.status_code == status, (name, answer.text[:500])
        assert answer.headers["content-type"] == "application/problem+json", name
        assert answer.json()["errors"][0]["pointer"].startswith(pointer), (name, answer.json())

    text = send(stack, json.dumps({"workflow": simple_workflow}), "text/plain")
    assert text.status_code == 415 and "Content-Type: application/json" in text.json()["detail"]
    # curl -d sends application/x-www-form-urlencoded; no header at all is read as JSON too.
    for content_type in ("application/x-www-form-urlencoded", None):
        assert send(stack, json.dumps({"workflow": simple_workflow}), content_type).status_code == 202
    utf8 = send(stack, json.dumps({"workflow": simple_workflow, "metadata": {"n": "é" * 1500}}))
    assert utf8.status_code == 202 and utf8.json()["metadata"] == {"n": "é" * 1500}
    cursor = stack.client().get(f"{stack.rest_url}/v1/jobs", params={"cursor": "é"}, timeout=30)
    assert cursor.status_code == 422 and cursor.json()["errors"][0]["pointer"] == "query:cursor"
    # Reads emit no metrics, and say nothing about it in the stack's log.
    assert stack.client().get(f"{stack.rest_url}/v1/health", timeout=30).status_code == 200
    assert "No application metrics to publish" not in (stack.state_dir / "stack.log").read_text()


def test_a_replayed_or_refused_large_submission_leaves_no_object(stack: Stack) -> None:
    graph = {str(i): {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8}} for i in range(40)}
    other = {**graph, "40": {"class_type": "EmptyImage", "inputs": {"width": 9, "height": 9}}}
    assert len(json.dumps(graph)) > INLINE_WORKFLOW_MAX_BYTES
    session = stack.client(1)
    url = f"{stack.rest_url}/v1/jobs"
    key = {"Idempotency-Key": "front-door-large"}
    answers = [
        session.post(url, json={"workflow": body}, headers=key, timeout=30) for body in (graph, graph, other)
    ]
    assert [a.status_code for a in answers] == [202, 202, 422]
    # As the harness (the local account's administrator): the stack's moto checks IAM.
    s3 = boto3.client(
        "s3",
        endpoint_url=stack.endpoints["aws_endpoint"],
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    owner = api_key_id(stack.endpoints["api_keys"][1])
    listed = s3.list_objects_v2(Bucket=BUCKET_NAME, Prefix=f"{S3Prefix.WORKFLOWS}/{owner}/")
    # One object, the first job's: neither the replay nor the refused reuse left one of its own.
    job_id = answers[0].json()["job_id"]
    [kept] = [item["Key"] for item in listed.get("Contents", [])]
    assert kept.startswith(f"{S3Prefix.WORKFLOWS}/{owner}/{job_id}/")


@pytest.mark.browser
@pytest.mark.timeout(120)
def test_the_docs_page_renders_its_operations_in_chromium_without_a_key(
    stack: Stack, chromium_executable: str
) -> None:
    from playwright.sync_api import sync_playwright

    requested: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_executable, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.on("request", lambda request: requested.append(request.url))
            response = page.goto(f"{stack.rest_url}/v1/docs")
            assert response is not None and response.status == 200
            page.wait_for_selector(".opblock-summary-path", timeout=30_000)
            paths = set(page.locator(".opblock-summary-path").all_inner_texts())
            assert {"/v1/jobs", "/v1/jobs/{job_id}", "/v1/uploads", "/v1/health"} <= {
                p.replace("\u200b", "") for p in paths
            }
            assert page.locator(".opblock-post").count() >= 3
        finally:
            browser.close()
    # Everything the page needed came from the service itself: no CDN.
    assert requested and all(url.startswith(stack.rest_url) for url in requested), requested
