"""Waiting for a job ends by its timeout, measured on a fake clock: a silent socket or a polling loop
cannot outlast it. And a workflow in the wrong format reaches the API instead of crashing the client."""

from __future__ import annotations

import json
from typing import Any

import pytest
import websocket
from comfy_jobs import Client, InvalidRequest, WaitTimeout
from comfy_jobs.client import with_inputs
from comfy_jobs.models import Job
from comfy_jobs.watch import watch_job

from tests.unit.test_client_transport import JOB, FakeTransport, client_over, response

RUNNING = Job.from_dict({**JOB, "status": "running"})


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class SilentSocket:
    """A WebSocket that never receives a frame: each recv takes its whole timeout on the fake clock."""

    def __init__(self, clock: FakeClock, timeout: float) -> None:
        self.clock = clock
        self.timeout = timeout
        self.timeouts = [timeout]

    def settimeout(self, timeout: float) -> None:
        self.timeout = timeout
        self.timeouts.append(timeout)

    def recv(self) -> str:
        self.clock.now += self.timeout
        raise websocket.WebSocketTimeoutException("timed out")

    def send(self, _text: str) -> None:
        pass

    def close(self, timeout: float = 1) -> None:
        pass


def test_a_silent_socket_cannot_outlast_the_timeout() -> None:
    clock = FakeClock()
    sockets: list[SilentSocket] = []

    def connect(_url: str, timeout: float) -> Any:
        sockets.append(SilentSocket(clock, timeout))
        return sockets[-1]

    events = watch_job("j1", lambda: "ws://x", timeout=3, connect=connect, poll=lambda: RUNNING, clock=clock)
    with pytest.raises(WaitTimeout, match="within 3 s"):
        list(events)
    # Before, the socket's second wait was a whole idle period (5 s): the wait ended about 6.5 s in.
    assert clock.now == pytest.approx(3.0)
    assert all(t <= 3.0 for socket in sockets for t in socket.timeouts)


def test_polling_holds_each_request_at_most_the_time_left_and_stops_at_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = FakeClock()
    monkeypatch.setattr(
        "comfy_jobs.client.time.sleep", lambda seconds: setattr(clock, "now", clock.now + seconds)
    )
    running = {**JOB, "status": "running"}
    # No WebSocket API (503 for a token, without retries), then the job stays running.
    transport = FakeTransport(response(503, {"title": "Unavailable"}), *[response(200, running)] * 50)
    client = client_over(transport, retries=0)
    client.clock = clock  # type: ignore[method-assign]

    def held(seconds: float) -> None:
        clock.now += seconds  # the API holds the request for its Prefer: wait

    original = transport.send

    def send(request: Any, *args: Any, **kwargs: Any) -> Any:
        prefer = request.headers.get("Prefer")
        if prefer:
            held(float(prefer.removeprefix("wait=")))
        return original(request, *args, **kwargs)

    transport.send = send  # type: ignore[method-assign]
    with pytest.raises(WaitTimeout):
        client.wait("j1", timeout=3)
    prefers = [r.headers["Prefer"] for r in transport.requests if "Prefer" in r.headers]
    assert prefers[0] == "wait=3"
    assert clock.now == pytest.approx(3.0)
    assert len(prefers) <= 3


UI_FORMAT = {
    "last_node_id": 9,
    "last_link_id": 9,
    "nodes": [{"id": 3, "type": "KSampler"}],
    "links": [],
    "version": 0.4,
}


def test_a_ui_format_workflow_is_sent_for_the_api_to_explain() -> None:
    problem = {"title": "The request is not valid", "detail": "Export (API)", "status": 422}
    transport = FakeTransport(response(422, problem))
    with pytest.raises(InvalidRequest, match="Export"):
        client_over(transport).submit(UI_FORMAT)  # type: ignore[arg-type]
    assert b'"nodes"' in (transport.requests[0].body or b"")


@pytest.mark.parametrize("workflow", [UI_FORMAT, [1, 2], {"1": "node"}])
def test_setting_inputs_in_a_workflow_of_the_wrong_shape_is_a_clear_value_error(workflow: Any) -> None:
    with pytest.raises(ValueError, match="not in ComfyUI's API format"):
        with_inputs(workflow, {"image": "upload://u1"})


def test_the_client_still_names_its_own_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMFY_API_URL", raising=False)
    with pytest.raises(ValueError, match="base_url"):
        Client(api_key="k")


class ScriptedSocket:
    """A WebSocket that answers the subscribe with the given frames, in order."""

    def __init__(self, frames: list[dict[str, Any]]) -> None:
        self.frames = [json.dumps(f) for f in frames]
        self.sent: list[str] = []

    def settimeout(self, _timeout: float) -> None:
        pass

    def recv(self) -> str:
        return self.frames.pop(0)

    def send(self, text: str) -> None:
        self.sent.append(text)

    def close(self, timeout: float = 1) -> None:
        pass


@pytest.mark.parametrize(("watching", "rate"), [(False, 0), (True, 0.2)])
def test_following_a_job_costs_one_request_the_submit(watching: bool, rate: float) -> None:
    done = {
        **JOB,
        "status": "succeeded",
        "attempts": 1,
        "progress": 100,
        "outputs": [
            {
                "node_id": "9",
                "filename": "a.png",
                "content_type": "image/png",
                "size": 3,
                "url": "https://s3/a",
            }
        ],
    }
    receipt = {**JOB, "seq": 0}
    transport = FakeTransport(response(202, receipt, {"WebSocket-Url": "ws://api.test/ws?token=t1"}))
    client = client_over(transport)
    urls: list[str] = []
    sockets: list[ScriptedSocket] = []
    # No snapshot: the receipt said where the job was, and nothing was missed since.
    frames = [
        {"type": "job.status", "job_id": "j1", "status": "running", "seq": 1_000_000},
        {
            "type": "job.status",
            "job_id": "j1",
            "status": "succeeded",
            "outputs": done["outputs"],
            "job": done,
            "seq": 2_000_000,
        },
    ]

    def connect(url: str, _timeout: float) -> Any:
        urls.append(url)
        sockets.append(ScriptedSocket(list(frames)))
        return sockets[-1]

    client.connect = connect  # type: ignore[method-assign]
    job = client.submit({"1": {"class_type": "X", "inputs": {}}})
    assert "websocket" in transport.requests[0].headers["Prefer"] and job.seq == 0
    seen: list[Any] = []
    finished = client.wait(job.job_id, timeout=30, on_event=seen.append if watching else None)
    # No token request, no read at the end: the terminal frame carried the job, URLs included.
    assert len(transport.requests) == 1
    assert urls == ["ws://api.test/ws?token=t1"]
    # Subscribed after the receipt's seq; progress only for a callback, at the economical rate.
    (subscribed,) = [json.loads(text) for text in sockets[0].sent]
    assert subscribed == {"action": "subscribe", "job_id": "j1", "progress_rate": rate, "after": 0}
    assert len(seen) == (2 if watching else 0)
    assert (finished.status, finished.attempts, finished.outputs[0].url) == ("succeeded", 1, "https://s3/a")


def test_a_second_watch_of_the_job_asks_for_a_fresh_token() -> None:
    transport = FakeTransport(
        response(202, JOB, {"WebSocket-Url": "ws://api.test/ws?token=t1"}),
        response(
            201, {"url": "ws://api.test/ws?token=t2", "token": "t2", "expires_at": "2030-01-01T00:00:00Z"}
        ),
    )
    client = client_over(transport)
    client.submit({"1": {"class_type": "X", "inputs": {}}})
    socket_url = client._ws_url_for("j1")
    assert socket_url() == "ws://api.test/ws?token=t1"
    assert socket_url() == "ws://api.test/ws?token=t2"
    assert transport.requests[1].path_url == "/v1/ws-tokens"


def test_waiting_with_an_older_server_reads_the_job_at_the_end() -> None:
    done = {**JOB, "status": "succeeded"}
    transport = FakeTransport(response(200, done))
    client = client_over(transport)
    frames = [
        {"type": "job.snapshot", "job": JOB},
        {"type": "job.status", "job_id": "j1", "status": "succeeded", "outputs": []},
    ]
    client.connect = lambda _url, _timeout: ScriptedSocket(list(frames))  # type: ignore[method-assign]
    client._socket_urls["j1"] = "ws://api.test/ws?token=t1"
    assert client.wait("j1", timeout=30).status == "succeeded"
    assert [r.path_url for r in transport.requests] == ["/v1/jobs/j1"]


class QuietAfterRunningSocket:
    """Answers the subscribe with ``running``, then stays silent (each recv takes its whole timeout on
    the fake clock) except for the pongs its pings earn and, at ``ends_at``, the terminal frame."""

    def __init__(self, clock: FakeClock, ends_at: float) -> None:
        self.clock = clock
        self.ends_at = ends_at
        self.timeout = 3.0
        self.sent: list[str] = []
        self.frames = [json.dumps({"type": "job.status", "job_id": "j1", "status": "running", "seq": 1})]

    def settimeout(self, timeout: float) -> None:
        self.timeout = timeout

    def recv(self) -> str:
        if self.frames:
            return self.frames.pop(0)
        if self.clock.now + self.timeout >= self.ends_at:
            self.clock.now = self.ends_at
            return json.dumps({"type": "job.status", "job_id": "j1", "status": "succeeded", "seq": 2})
        self.clock.now += self.timeout
        raise websocket.WebSocketTimeoutException("timed out")

    def send(self, text: str) -> None:
        self.sent.append(text)
        if json.loads(text)["action"] == "ping":
            self.frames.append(json.dumps({"type": "pong"}))

    def close(self, timeout: float = 1) -> None:
        pass


@pytest.mark.parametrize(("rate", "pings"), [(0, 0), (10, 4)])
def test_once_frames_flow_silence_is_answered_by_a_ping_not_a_read(rate: float, pings: int) -> None:
    """Without progress a 25 s run is silent from running to its end: no ping, no REST read (each a billed
    message or request). With progress asked for, silence is suspicious sooner, and a ping proves the
    socket; the job is read over REST at most once a minute."""
    clock = FakeClock()
    socket = QuietAfterRunningSocket(clock, ends_at=25.0)
    reads: list[float] = []

    def read() -> Job:
        reads.append(clock.now)
        return RUNNING

    events = list(
        watch_job(
            "j1",
            lambda: "ws://x",
            connect=lambda _url, _timeout: socket,
            poll=read,
            clock=clock,
            progress_rate=rate,
            after=0,
        )
    )
    assert [e.status for e in events if hasattr(e, "status")] == ["running", "succeeded"]
    assert reads == []
    assert sum(json.loads(t)["action"] == "ping" for t in socket.sent) == pings
