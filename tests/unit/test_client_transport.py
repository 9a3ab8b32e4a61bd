"""The client's retries and idempotency keys, over a fake transport: no network."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import requests
from comfy_jobs import Client, ConnectionFailed, ServiceUnavailable
from requests.adapters import BaseAdapter

Answer = Callable[[requests.PreparedRequest], requests.Response | Exception]

JOB = {"job_id": "j1", "status": "queued", "attempts": 0, "progress": 0, "outputs": []}


def response(status: int, body: Any, headers: dict[str, str] | None = None) -> requests.Response:
    answer = requests.Response()
    answer.status_code = status
    answer._content = json.dumps(body).encode()
    answer.headers.update({"Content-Type": "application/json", **(headers or {})})
    return answer


class FakeTransport(BaseAdapter):
    """Answers each request with the next of ``answers``; remembers every request."""

    def __init__(self, *answers: requests.Response | Exception) -> None:
        super().__init__()
        self.answers = list(answers)
        self.requests: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        answer.request = request
        answer.url = str(request.url)
        return answer

    def close(self) -> None:
        pass


def client_over(transport: FakeTransport, retries: int = 3) -> Client:
    session = requests.Session()
    session.mount("http://", transport)
    return Client("http://api.test", "key-1", retries=retries, backoff=0.001, session=session)


def test_retries_reuse_one_generated_idempotency_key(monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr("comfy_jobs.client.time.sleep", sleeps.append)
    transport = FakeTransport(
        requests.ReadTimeout("lost"),
        requests.ConnectionError("reset"),
        response(503, {"title": "Busy", "status": 503, "detail": "try later"}, {"Retry-After": "2"}),
        response(429, {"message": "Too Many Requests"}),
        response(202, JOB),
    )
    job = client_over(transport, retries=4).submit({"1": {"class_type": "X", "inputs": {}}})
    assert job.job_id == "j1"
    keys = {r.headers["Idempotency-Key"] for r in transport.requests}
    assert len(transport.requests) == 5 and len(keys) == 1 and len(keys.pop()) == 36
    assert sleeps[2] >= 2, "Retry-After is honoured"
    assert all(r.headers["x-api-key"] == "key-1" for r in transport.requests)


def test_each_submit_gets_its_own_key_unless_one_is_given() -> None:
    transport = FakeTransport(response(202, JOB), response(202, JOB), response(202, JOB))
    client = client_over(transport)
    client.submit({}, metadata={"a": 1})
    client.submit({})
    client.submit(template="txt2img", params={"prompt": "p"}, idempotency_key="mine")
    keys = [r.headers["Idempotency-Key"] for r in transport.requests]
    assert keys[0] != keys[1] and keys[2] == "mine"
    bodies = [json.loads(r.body or b"{}") for r in transport.requests]
    assert bodies[0] == {"workflow": {}, "metadata": {"a": 1}}
    assert bodies[2] == {"template": "txt2img", "params": {"prompt": "p"}}


def test_prefer_wait_is_capped_at_twenty_seconds() -> None:
    transport = FakeTransport(response(200, {**JOB, "status": "succeeded"}))
    assert client_over(transport).get("j1", wait=60).status == "succeeded"
    assert transport.requests[0].headers["Prefer"] == "wait=20"


def test_retries_give_up_with_the_last_problem_or_a_connection_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("comfy_jobs.client.time.sleep", lambda _: None)
    busy = [response(503, {"title": "Busy", "status": 503, "detail": "down"}) for _ in range(3)]
    with pytest.raises(ServiceUnavailable, match="503 Busy: down"):
        client_over(FakeTransport(*busy), retries=2).get("j1")
    with pytest.raises(ConnectionFailed):
        client_over(FakeTransport(*[requests.ConnectionError("x")] * 2), retries=1).get("j1")


def test_client_errors_are_not_retried() -> None:
    transport = FakeTransport(response(404, {"title": "No such job", "status": 404, "detail": "none"}))
    with pytest.raises(Exception, match="404 No such job"):
        client_over(transport).get("j1")
    assert len(transport.requests) == 1


def page(ids: list[str], cursor: str | None) -> requests.Response:
    return response(200, {"items": [{**JOB, "job_id": i} for i in ids], "next_cursor": cursor})


def test_list_follows_cursors_and_stops_at_the_limit() -> None:
    transport = FakeTransport(page(["a", "b"], "c1"), page(["c", "d"], "c2"), page(["e"], None))
    assert [j.job_id for j in client_over(transport).list(status="succeeded", page_size=2)] == list("abcde")
    assert "cursor=c1" in str(transport.requests[1].url) and "status=succeeded" in str(
        transport.requests[1].url
    )
    limited = FakeTransport(page(["a", "b"], "c1"), page(["c"], "c2"))
    assert [j.job_id for j in client_over(limited).list(limit=3, page_size=2)] == list("abc")
    assert "limit=1" in str(limited.requests[1].url)


def test_the_environment_supplies_url_and_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMFY_API_URL", "http://env.test/")
    monkeypatch.setenv("COMFY_API_KEY", "env-key")
    client = Client()
    assert client.base_url == "http://env.test" and client.session.headers["x-api-key"] == "env-key"
    monkeypatch.delenv("COMFY_API_KEY")
    with pytest.raises(ValueError, match="COMFY_API_KEY"):
        Client()
