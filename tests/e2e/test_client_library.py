"""The ``comfy_jobs`` library against the local stack: every call, reconnects, retries and readable errors."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from comfy_jobs import (
    Client,
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    Progress,
    ServiceUnavailable,
    Snapshot,
    StatusChange,
)
from PIL import Image
from requests.adapters import HTTPAdapter

from shared.aws.connections import ConnectionStore
from tests.conftest import load_workflow, sampler_workflow
from tests.e2e.conftest import Stack, start_stack, stop_stack

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(tmp_path_factory.mktemp("client-stack"), RUNNERS="1", SIM_STEP_DELAY="0.03")
    yield running
    stop_stack(running)


@pytest.fixture
def client(stack: Stack) -> Client:
    return Client(stack.rest_url, stack.endpoints["api_keys"][0], timeout=10)


def png(path: Path) -> Path:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 40, 40)).save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())
    return path


def test_submit_wait_and_download(client: Client, tmp_path: Path) -> None:
    job = client.submit(sampler_workflow(5), metadata={"test": "download"})
    assert job.status == "queued" and job.metadata == {"test": "download"}
    done = client.wait(job.job_id, timeout=60)
    assert done.status == "succeeded" and done.progress == 100
    assert done.started_at and done.finished_at and done.attempts == 1
    saved = client.download(done, tmp_path / "out")
    assert [p.name for p in saved] == [o.filename for o in done.outputs]
    assert saved[0].read_bytes().startswith(b"\x89PNG") and saved[0].stat().st_size == done.outputs[0].size


def test_prefer_wait_answers_with_the_finished_job(client: Client) -> None:
    job = client.submit(load_workflow("simple_invert_save.json"), wait=15)
    assert job.status == "succeeded", "Prefer: wait should answer once the job has ended"
    assert client.get(job.job_id, wait=5).status == "succeeded"


def test_the_same_idempotency_key_makes_one_job(client: Client) -> None:
    key = str(uuid.uuid4())
    workflow = load_workflow("simple_invert_save.json")
    first = client.submit(workflow, idempotency_key=key)
    again = client.submit(workflow, idempotency_key=key)
    assert again.job_id == first.job_id


class LoseFirstSubmitAnswer(HTTPAdapter):
    """The first POST /v1/jobs reaches the API and makes its job, but its answer never arrives."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: list[str] = []
        self.lost: dict[str, Any] = {}

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        response = super().send(request, *args, **kwargs)
        if request.method == "POST" and request.path_url == "/v1/jobs":
            self.keys.append(str(request.headers["Idempotency-Key"]))
            if len(self.keys) == 1:
                self.lost = response.json()
                raise requests.ReadTimeout("the answer was lost", request=request)
        return response


def test_a_submit_retried_after_a_lost_answer_still_makes_one_job(stack: Stack) -> None:
    adapter = LoseFirstSubmitAnswer()
    session = requests.Session()
    session.mount("http://", adapter)
    client = Client(stack.rest_url, stack.endpoints["api_keys"][1], timeout=10, session=session, backoff=0.05)
    marker = str(uuid.uuid4())
    job = client.submit(load_workflow("simple_invert_save.json"), metadata={"marker": marker})
    assert len(adapter.keys) == 2 and adapter.keys[0] == adapter.keys[1], "a retry reuses its key"
    assert job.job_id == adapter.lost["job_id"]
    mine = [j for j in client.list(limit=200) if (j.metadata or {}).get("marker") == marker]
    assert [j.job_id for j in mine] == [job.job_id]


def test_list_follows_pages_and_filters_by_status(client: Client) -> None:
    ids = [client.submit(load_workflow("simple_invert_save.json")).job_id for _ in range(3)]
    for job_id in ids:
        client.wait(job_id, timeout=30)
    paged = [job.job_id for job in client.list(page_size=2)]
    assert len(paged) == len(set(paged)) and set(ids) <= set(paged)
    assert paged.index(ids[2]) < paged.index(ids[0]), "newest first"
    assert [j.job_id for j in client.list(limit=2, page_size=1)] == paged[:2]
    assert all(j.status == "succeeded" for j in client.list(status="succeeded"))


def test_watch_yields_typed_events_to_the_terminal_status(client: Client) -> None:
    job = client.submit(sampler_workflow(60))
    events = list(client.watch(job.job_id, timeout=60))
    assert isinstance(events[0], Snapshot)
    percents = [e.percent for e in events if isinstance(e, Progress)]
    assert len(percents) >= 3 and percents == sorted(percents)
    last = events[-1]
    assert isinstance(last, StatusChange) and last.status == "succeeded" and last.outputs[0].url


def drop_connections(stack: Stack, job_id: str) -> int:
    session = boto3.session.Session(
        aws_access_key_id="local", aws_secret_access_key="local", region_name="us-east-1"
    )
    connections = ConnectionStore(
        session.client("dynamodb", endpoint_url=stack.endpoints["aws_endpoint"]),
        stack.runner_env["CONNECTIONS_TABLE_NAME"],
    )
    # The management API is IAM-authorized: the harness signs its calls as any AWS caller would.
    management = session.client("apigatewaymanagementapi", endpoint_url=stack.endpoints["management_url"])
    dropped = 0
    for connection_id in connections.subscribers(job_id):
        try:
            management.delete_connection(ConnectionId=connection_id)
        except management.exceptions.GoneException:
            continue
        dropped += 1
    return dropped


def test_watch_reconnects_when_the_server_drops_the_socket(stack: Stack, client: Client) -> None:
    job = client.submit(sampler_workflow(150))
    events: list[Any] = []
    dropped = 0
    for event in client.watch(job.job_id, timeout=60):
        events.append(event)
        if isinstance(event, Progress) and not dropped:
            dropped = drop_connections(stack, job.job_id)
            assert dropped == 1
    assert [type(e) for e in events].count(Snapshot) == 1, "the reconnect resumes after the last event seen"
    assert_once_in_order(events)
    assert isinstance(events[-1], StatusChange) and events[-1].status == "succeeded"


def assert_once_in_order(events: list[Any]) -> None:
    seqs = [e.seq for e in events if e.seq is not None]
    assert len(seqs) == len(events), "every event carries its seq"
    assert seqs == sorted(set(seqs)), "each event once, in order, across the reconnect"


class TracingClient(Client):
    """Keeps every socket it opens, so a test can cut one."""

    sockets: list[Any]

    def connect(self, url: str, timeout: float) -> Any:
        socket = super().connect(url, timeout)
        self.sockets.append(socket)
        return socket


def test_watch_reconnects_when_the_network_drops(stack: Stack) -> None:
    client = TracingClient(stack.rest_url, stack.endpoints["api_keys"][0], timeout=10)
    client.sockets = []
    job = client.submit(sampler_workflow(150))
    events: list[Any] = []
    for event in client.watch(job.job_id, timeout=60):
        events.append(event)
        if isinstance(event, Progress) and len(client.sockets) == 1:
            client.sockets[0].sock.close()  # no close frame: the network just went away
    assert len(client.sockets) == 2
    assert sum(isinstance(e, Snapshot) for e in events) == 1
    assert_once_in_order(events)
    assert isinstance(events[-1], StatusChange) and events[-1].status == "succeeded"


def test_wait_polls_when_the_websocket_is_unavailable(stack: Stack) -> None:
    class NoWebSocket(Client):
        def ws_url(self) -> str:
            raise ServiceUnavailable(503, {"title": "Service Unavailable", "detail": "no WebSocket API"})

    client = NoWebSocket(stack.rest_url, stack.endpoints["api_keys"][0], timeout=10)
    job = client.submit(sampler_workflow(5))
    assert client.wait(job.job_id, timeout=60).status == "succeeded"


def test_cancel_a_running_job_then_a_second_cancel_conflicts(client: Client) -> None:
    job = client.submit(sampler_workflow(1000))
    for event in client.watch(job.job_id, timeout=30):
        if isinstance(event, Progress):
            break
    client.cancel(job.job_id)
    assert client.wait(job.job_id, timeout=30).status == "canceled"
    with pytest.raises(Conflict) as conflict:
        client.cancel(job.job_id)
    assert conflict.value.status == 409 and conflict.value.title


def test_templates_and_one_template(client: Client) -> None:
    names = {t.name for t in client.templates()}
    assert {"txt2img", "img2img"} <= names
    txt2img = client.template("txt2img")
    assert txt2img.description and "prompt" in txt2img.parameters["properties"]
    with pytest.raises(NotFound):
        client.template("no-such-template")


def test_submit_a_template_with_params(client: Client, tmp_path: Path) -> None:
    job = client.submit(template="txt2img", params={"prompt": "a red fox", "steps": 4, "width": 256})
    done = client.wait(job.job_id, timeout=60)
    assert done.status == "succeeded", done.error
    assert client.download(done, tmp_path)


def test_upload_and_an_img2img_template(client: Client, tmp_path: Path) -> None:
    picture = png(tmp_path / "cat.png")
    upload = client.upload(picture)
    assert upload.ref == f"upload://{upload.upload_id}"
    job = client.submit(
        template="img2img", params={"prompt": "a cat, oil painting", "steps": 3}, uploads={"image": picture}
    )
    done = client.wait(job.job_id, timeout=60)
    assert done.status == "succeeded", done.error


def test_an_uploaded_file_as_a_workflow_input(client: Client, tmp_path: Path) -> None:
    workflow = load_workflow("loadimage_after_upload.json")
    job = client.submit(workflow, uploads={"1.image": png(tmp_path / "in.png")})
    done = client.wait(job.job_id, timeout=60)
    assert done.status == "succeeded", done.error


def test_readable_errors(stack: Stack, client: Client) -> None:
    with pytest.raises(Forbidden) as forbidden:
        Client(stack.rest_url, "not-a-key", retries=0).get("anything")
    assert forbidden.value.status == 403 and "Forbidden" in str(forbidden.value)

    with pytest.raises(NotFound) as missing:
        client.get("no-such-job")
    assert "no-such-job" in str(missing.value)

    bad = {"1": {"class_type": "SaveImage", "inputs": {"images": ["9", 0]}}}
    with pytest.raises(InvalidRequest) as invalid:
        client.submit(bad)
    assert invalid.value.status == 422 and invalid.value.errors
    text = str(invalid.value)
    assert "/workflow/1" in text and invalid.value.title in text
