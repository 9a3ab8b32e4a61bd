"""The REST half over real HTTP on 127.0.0.1: API keys, events, responses and API Gateway's own errors."""

from __future__ import annotations

import base64
import http.client
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from aws_lambda_powertools.utilities.parser.models import APIGatewayProxyEventModel
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from mangum import Mangum

from local.apigw import ApiGatewayEmulator, LambdaFunction, RestApiEmulator
from tests.unit.test_apigw_events import REST_CONTEXT_KEYS, REST_IDENTITY_KEYS

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

KEY = "test-api-key-value"
KEY_ID = "abcdef1234"
TIMEOUT = 10


class Recorder:
    """A Lambda handler that records what it was given and answers what it is told to."""

    def __init__(self, answer: Callable[[dict[str, Any]], Any] | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.contexts: list[Any] = []
        self.threads: list[str] = []
        self.answer = answer or (lambda event: {"statusCode": 200, "body": json.dumps({"ok": True})})

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.events.append(event)
        self.contexts.append(context)
        self.threads.append(threading.current_thread().name)
        return self.answer(event)


def serve(handler: Any, **options: Any) -> tuple[ApiGatewayEmulator, str]:
    emulator = ApiGatewayEmulator(RestApiEmulator(handler, {KEY: KEY_ID}, **options))
    return emulator, str(emulator.start().rest_url)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def base_url(recorder: Recorder) -> Iterator[str]:
    emulator, url = serve(recorder)
    yield url
    emulator.stop()


def test_a_request_without_a_key_is_forbidden_without_calling_the_handler(
    base_url: str, recorder: Recorder
) -> None:
    response = requests.get(f"{base_url}/v1/jobs", timeout=TIMEOUT)

    assert response.status_code == 403
    assert response.json() == {"message": "Forbidden"}
    assert response.headers["x-amzn-ErrorType"] == "ForbiddenException"
    assert recorder.events == []


def test_an_unknown_key_is_forbidden_without_calling_the_handler(base_url: str, recorder: Recorder) -> None:
    response = requests.get(f"{base_url}/v1/health", headers={"x-api-key": "nope"}, timeout=TIMEOUT)

    assert response.status_code == 403
    assert response.headers["x-amzn-ErrorType"] == "ForbiddenException"
    assert recorder.events == []


def test_the_root_path_is_its_own_resource(base_url: str, recorder: Recorder) -> None:
    response = requests.get(f"{base_url}/", headers={"x-api-key": KEY}, timeout=TIMEOUT)

    assert response.status_code == 200
    (event,) = recorder.events
    APIGatewayProxyEventModel.model_validate(event)
    assert (event["resource"], event["path"], event["pathParameters"]) == ("/", "/", None)
    assert event["requestContext"]["resourcePath"] == "/"


def test_the_root_path_needs_a_key_too(base_url: str, recorder: Recorder) -> None:
    assert requests.get(f"{base_url}/", timeout=TIMEOUT).status_code == 403
    assert recorder.events == []


def test_the_handler_gets_a_proxy_event_with_the_api_key_id(base_url: str, recorder: Recorder) -> None:
    response = requests.get(
        f"{base_url}/v1/jobs/j-1", headers={"x-api-key": KEY, "User-Agent": "tester/1"}, timeout=TIMEOUT
    )

    assert response.status_code == 200
    assert response.json() == {"ok": True}
    (event,) = recorder.events
    APIGatewayProxyEventModel.model_validate(event)
    assert set(event["requestContext"]) == REST_CONTEXT_KEYS
    assert set(event["requestContext"]["identity"]) == REST_IDENTITY_KEYS
    identity = event["requestContext"]["identity"]
    assert identity["apiKeyId"] == KEY_ID
    assert identity["apiKey"] == KEY
    assert identity["sourceIp"] == "127.0.0.1"
    assert identity["userAgent"] == "tester/1"
    assert event["httpMethod"] == "GET"
    assert event["path"] == "/v1/jobs/j-1"
    assert event["resource"] == "/{proxy+}"
    assert event["pathParameters"] == {"proxy": "v1/jobs/j-1"}
    assert event["queryStringParameters"] is None
    assert event["body"] is None
    assert event["headers"]["X-Forwarded-Proto"] == "http"
    assert response.headers["x-amzn-RequestId"] == event["requestContext"]["requestId"]


def test_repeated_query_parameters_are_multi_valued(base_url: str, recorder: Recorder) -> None:
    requests.get(
        f"{base_url}/v1/jobs?status=queued&status=running&limit=5&q=a+b%2Bc",
        headers={"x-api-key": KEY},
        timeout=TIMEOUT,
    )

    (event,) = recorder.events
    assert event["queryStringParameters"] == {"status": "running", "limit": "5", "q": "a b+c"}
    assert event["multiValueQueryStringParameters"]["status"] == ["queued", "running"]


def test_repeated_headers_are_multi_valued(base_url: str, recorder: Recorder) -> None:
    # requests folds a list into one header, so send the raw pair twice through http.client.
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(str(parts.hostname), parts.port, timeout=TIMEOUT)
    conn.putrequest("GET", "/v1/health")
    conn.putheader("x-api-key", KEY)
    conn.putheader("X-Tag", "one")
    conn.putheader("X-Tag", "two")
    conn.endheaders()
    assert conn.getresponse().status == 200
    conn.close()

    (event,) = recorder.events
    assert event["headers"]["X-Tag"] == "two"
    assert event["multiValueHeaders"]["X-Tag"] == ["one", "two"]


def test_a_json_body_arrives_as_text(base_url: str, recorder: Recorder) -> None:
    requests.post(f"{base_url}/v1/jobs", json={"workflow": {"1": {}}}, headers={"x-api-key": KEY}, timeout=10)

    (event,) = recorder.events
    assert event["isBase64Encoded"] is False
    assert json.loads(event["body"]) == {"workflow": {"1": {}}}


def test_a_binary_body_arrives_base64_encoded(base_url: str, recorder: Recorder) -> None:
    payload = bytes(range(256))
    requests.put(
        f"{base_url}/v1/uploads/u-1",
        data=payload,
        headers={"x-api-key": KEY, "Content-Type": "application/octet-stream"},
        timeout=TIMEOUT,
    )

    (event,) = recorder.events
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == payload


def test_a_handler_that_raises_gives_502() -> None:
    def broken(event: dict[str, Any], context: Any) -> Any:
        raise RuntimeError("boom")

    emulator, url = serve(broken)
    try:
        response = requests.get(f"{url}/v1/health", headers={"x-api-key": KEY}, timeout=TIMEOUT)
    finally:
        emulator.stop()

    assert response.status_code == 502
    assert response.json() == {"message": "Internal server error"}


@pytest.mark.parametrize(
    "answer",
    [
        {"statusCode": 200, "body": {"not": "a string"}},
        {"statusCode": 200, "body": "x", "unexpected": True},
        {"body": "no status code"},
    ],
)
def test_a_malformed_proxy_response_gives_502(answer: dict[str, Any]) -> None:
    emulator, url = serve(Recorder(lambda event: answer))
    try:
        response = requests.get(f"{url}/v1/health", headers={"x-api-key": KEY}, timeout=TIMEOUT)
    finally:
        emulator.stop()

    assert response.status_code == 502


def test_a_response_that_is_not_json_gives_502() -> None:
    emulator, url = serve(Recorder(lambda event: {"statusCode": 200, "body": {1, 2}}))
    try:
        response = requests.get(f"{url}/v1/health", headers={"x-api-key": KEY}, timeout=TIMEOUT)
    finally:
        emulator.stop()

    assert response.status_code == 502
    assert response.json() == {"message": "Internal server error"}


def test_status_headers_and_a_base64_body_come_back_as_http() -> None:
    def answer(event: dict[str, Any]) -> dict[str, Any]:
        return {
            "statusCode": 202,
            "headers": {"Location": "/v1/jobs/j-1", "Content-Type": "image/png"},
            "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
            "body": base64.b64encode(b"\x89PNG\x00").decode(),
            "isBase64Encoded": True,
        }

    emulator, url = serve(Recorder(answer))
    try:
        response = requests.get(f"{url}/v1/jobs/j-1", headers={"x-api-key": KEY}, timeout=TIMEOUT)
    finally:
        emulator.stop()

    assert response.status_code == 202
    assert response.content == b"\x89PNG\x00"
    assert response.headers["Location"] == "/v1/jobs/j-1"
    assert response.headers["Content-Type"] == "image/png"
    assert response.raw.headers.getlist("Set-Cookie") == ["a=1", "b=2"]


def test_a_body_over_10_mb_is_refused_with_413(base_url: str, recorder: Recorder) -> None:
    response = requests.post(
        f"{base_url}/v1/jobs", data=b"x" * (10 * 1024 * 1024 + 1), headers={"x-api-key": KEY}, timeout=30
    )

    assert response.status_code == 413
    assert recorder.events == []


def test_a_body_of_exactly_10_mb_is_passed_on(base_url: str, recorder: Recorder) -> None:
    response = requests.post(
        f"{base_url}/v1/jobs", data=b"x" * (10 * 1024 * 1024), headers={"x-api-key": KEY}, timeout=30
    )

    assert response.status_code == 200
    assert len(recorder.events[0]["body"]) == 10 * 1024 * 1024


def test_a_slow_handler_times_out_with_504() -> None:
    release = threading.Event()

    def slow(event: dict[str, Any], context: Any) -> Any:
        release.wait(5)
        return {"statusCode": 200, "body": ""}

    emulator, url = serve(slow, integration_timeout_s=0.3)
    try:
        response = requests.get(f"{url}/v1/health", headers={"x-api-key": KEY}, timeout=TIMEOUT)
    finally:
        release.set()
        emulator.stop()

    assert response.status_code == 504
    assert response.json() == {"message": "Endpoint request timed out"}


def test_handlers_run_off_the_event_loop_with_a_lambda_context() -> None:
    recorder = Recorder()
    emulator, url = serve(LambdaFunction(recorder, name="comfy-api", timeout_s=30, memory_mb=512))
    try:
        requests.get(f"{url}/v1/health", headers={"x-api-key": KEY}, timeout=TIMEOUT)
    finally:
        emulator.stop()

    (context,) = recorder.contexts
    assert recorder.threads[0].startswith("apigw-lambda")
    assert context.function_name == "comfy-api"
    assert context.memory_limit_in_mb == 512
    assert context.invoked_function_arn.endswith(":function:comfy-api")
    assert context.aws_request_id
    assert 0 < context.get_remaining_time_in_millis() <= 30_000


def test_requests_are_handled_concurrently() -> None:
    started = threading.Barrier(3, timeout=5)

    def waits_for_others(event: dict[str, Any], context: Any) -> Any:
        started.wait()  # passes only if three invocations are in flight at once
        return {"statusCode": 200, "body": ""}

    emulator, url = serve(waits_for_others)
    results: list[int] = []
    try:
        threads = [
            threading.Thread(
                target=lambda: results.append(
                    requests.get(f"{url}/v1/health", headers={"x-api-key": KEY}, timeout=TIMEOUT).status_code
                )
            )
            for _ in range(3)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT)
    finally:
        emulator.stop()

    assert results == [200, 200, 200]


def test_a_fastapi_app_behind_mangum_sees_the_request() -> None:
    app = FastAPI()

    @app.post("/v1/jobs")
    async def create(request: Request) -> JSONResponse:
        owner = request.scope["aws.event"]["requestContext"]["identity"]["apiKeyId"]
        body = await request.json()
        location = str(request.url_for("read", job_id="j-1"))
        return JSONResponse(
            {"owner": owner, "body": body, "query": dict(request.query_params)},
            status_code=202,
            headers={"Location": location},
        )

    @app.get("/v1/jobs/{job_id}", name="read")
    async def read(job_id: str) -> dict[str, str]:
        return {"job_id": job_id}

    emulator, url = serve(Mangum(app, lifespan="off"))
    try:
        created = requests.post(
            f"{url}/v1/jobs?wait=1", json={"template": "t"}, headers={"x-api-key": KEY}, timeout=TIMEOUT
        )
        read_back = requests.get(created.headers["Location"], headers={"x-api-key": KEY}, timeout=TIMEOUT)
    finally:
        emulator.stop()

    assert created.status_code == 202
    assert created.json() == {"owner": KEY_ID, "body": {"template": "t"}, "query": {"wait": "1"}}
    assert created.headers["Location"] == f"{url}/v1/jobs/j-1"
    assert read_back.json() == {"job_id": "j-1"}


def test_stop_frees_the_port() -> None:
    emulator, url = serve(Recorder())
    emulator.stop()
    time.sleep(0.05)

    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/v1/health", headers={"x-api-key": KEY}, timeout=2)


def test_public_paths_answer_a_get_without_a_key_and_nothing_else() -> None:
    recorder = Recorder()
    emulator, url = serve(recorder, public_paths=["/v1/openapi.json", "/v1/docs", "/v1/docs/{asset}"])
    try:
        for path in ("/v1/openapi.json", "/v1/docs", "/v1/docs/swagger-ui.css"):
            assert requests.get(url + path, timeout=TIMEOUT).status_code == 200, path
        assert [e["requestContext"]["identity"]["apiKeyId"] for e in recorder.events] == [None] * 3
        for method, path in [
            ("POST", "/v1/docs"),
            ("GET", "/v1/docs/a/b"),
            ("GET", "/v1/jobs"),
            ("GET", "/v1/openapi.jsonx"),
        ]:
            assert requests.request(method, url + path, timeout=TIMEOUT).status_code == 403, (method, path)
        assert len(recorder.events) == 3
    finally:
        emulator.stop()
