"""In-process integration fixtures: the API handler called with real API Gateway events over moto."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from local.apigw.events import ApiInfo, RestRequest, rest_proxy_event


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in str(item.fspath) and not item.get_closest_marker("integration"):
            item.add_marker(pytest.mark.integration)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any
    # The body as sent, byte for byte.
    raw: str = ""


class FakeLambdaContext:
    function_name = "api"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:api"
    aws_request_id = "test-request"
    log_group_name = "/aws/lambda/api"
    log_stream_name = "test"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


ApiCall = Callable[..., Answer]


@pytest.fixture
def api(moto_aws: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiCall]:
    """Calls ``functions.api.handler.handler`` with the proxy event API Gateway would send.

    ``owner`` is the API key id; a key no tenant holds yet is given a tenant of the same id.
    """
    from shared.aws.tenants import TenantKey, TenantStore

    clients, resources = moto_aws
    tenants = TenantStore(clients.dynamodb, resources.tenants_table)
    monkeypatch.setenv("JOBS_QUEUE_URL", resources.queue_url)
    from functions.api import context
    from functions.api.handler import handler

    context.default_context.cache_clear()
    # Lambda's runtime thread always has an event loop, which Mangum takes with get_event_loop(); a test
    # that ran asyncio.run() on this thread before would have left none.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    def call(
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        owner: str = "owner-a",
        raw: bytes | None = None,
    ) -> Answer:
        tenants.add_key(TenantKey(owner, owner, 0))
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        all_headers = {"content-type": "application/json", **(headers or {})}
        request = RestRequest(
            method=method,
            path=path.split("?")[0],
            headers=tuple(all_headers.items()),
            query=tuple(
                tuple(part.split("=", 1))
                for part in path.partition("?")[2].split("&")
                if "=" in part  # type: ignore[misc]
            ),
            body=data,
            source_ip="127.0.0.1",
            domain_name="127.0.0.1",
        )
        event = rest_proxy_event(
            ApiInfo(), request, api_key="key-" + owner, api_key_id=owner, resource_id="res"
        )
        response = handler(event, FakeLambdaContext())
        text = response.get("body") or ""
        content_type = response["headers"].get("content-type", "")
        parsed = json.loads(text) if text and "json" in content_type else text
        return Answer(response["statusCode"], response["headers"], parsed, text)

    yield call
    context.default_context.cache_clear()
    asyncio.set_event_loop(None)
    loop.close()
