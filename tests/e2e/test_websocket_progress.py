"""Live progress over the WebSocket API, from the runner through @connections to clients."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
import websocket

from shared.aws.connections import ConnectionStore
from shared.ws_tokens import issue_token
from tests.conftest import load_workflow, sampler_workflow
from tests.e2e.conftest import TERMINAL, Stack, start_stack, stop_stack, submit, wait_for

SECRET = "e2e-websocket-secret"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    running = start_stack(
        tmp_path_factory.mktemp("ws-stack"), RUNNERS="1", WS_TOKEN_SECRET=SECRET, SIM_STEP_DELAY="0.03"
    )
    yield running
    stop_stack(running)


def open_socket(stack: Stack, key_index: int = 0) -> websocket.WebSocket:
    token = stack.client(key_index).post(f"{stack.rest_url}/v1/ws-tokens", timeout=10)
    assert token.status_code == 201
    return websocket.create_connection(token.json()["url"], timeout=15)


def frames_until_terminal(socket: websocket.WebSocket) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    while True:
        frame = json.loads(socket.recv())
        frames.append(frame)
        if frame["type"] == "job.status" and frame["status"] in TERMINAL:
            return frames


def check_sequence(frames: list[dict[str, Any]]) -> None:
    assert frames[0]["type"] == "job.snapshot"
    # The snapshot holds whatever happened before the subscription; the frames hold the rest.
    statuses = [frames[0]["job"]["status"]] + [f["status"] for f in frames if f["type"] == "job.status"]
    assert statuses[-1] == "succeeded" and "running" in statuses
    assert statuses.index("running") < statuses.index("succeeded")
    percents = [f["percent"] for f in frames if f["type"] == "job.progress"]
    assert len(percents) >= 5
    assert percents == sorted(percents), "progress never goes back"
    sampler = [f for f in frames if f["type"] == "job.progress" and f["node_type"] == "KSampler"]
    assert sampler and sampler[-1]["max"] == 40
    # The runner presigned it: its role must be allowed to GetObject the output, or the link is a 403.
    download = requests.get(frames[-1]["outputs"][0]["url"], timeout=10)
    assert download.status_code == 200 and download.content.startswith(b"\x89PNG")


def test_a_subscriber_sees_snapshot_running_progress_and_success(stack: Stack) -> None:
    socket = open_socket(stack)
    receipt = submit(stack.client(), stack.rest_url, sampler_workflow(40))
    socket.send(json.dumps({"action": "subscribe", "job_id": receipt.json()["job_id"]}))
    frames = frames_until_terminal(socket)
    socket.close()
    check_sequence(frames)
    # Coalesced: at most about ten progress frames a second reach a client.
    progress = [f["ts"] for f in frames if f["type"] == "job.progress"]
    span = (progress[-1] - progress[0]) / 1000
    assert len(progress) <= 10 * span + 3


def test_two_clients_on_one_job_both_get_everything(stack: Stack) -> None:
    sockets = [open_socket(stack), open_socket(stack)]
    job_id = submit(stack.client(), stack.rest_url, sampler_workflow(40)).json()["job_id"]
    for socket in sockets:
        socket.send(json.dumps({"action": "subscribe", "job_id": job_id}))
    results: list[list[dict[str, Any]]] = [[], []]
    threads = [
        threading.Thread(target=lambda i=i: results[i].extend(frames_until_terminal(sockets[i])))
        for i in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for frames in results:
        check_sequence(frames)


def test_a_client_that_vanishes_is_removed_and_the_job_still_succeeds(stack: Stack) -> None:
    endpoints = stack.endpoints
    session = boto3.session.Session(
        aws_access_key_id="local", aws_secret_access_key="local", region_name="us-east-1"
    )
    connections = ConnectionStore(
        session.client("dynamodb", endpoint_url=endpoints["aws_endpoint"]),
        stack.runner_env["CONNECTIONS_TABLE_NAME"],
    )
    client = stack.client()
    job_id = submit(client, stack.rest_url, sampler_workflow(60)).json()["job_id"]
    # One subscriber drops its socket mid-job ($disconnect cleans it up) ...
    socket = open_socket(stack)
    socket.send(json.dumps({"action": "subscribe", "job_id": job_id}))
    assert json.loads(socket.recv())["type"] == "job.snapshot"
    socket.sock.close()  # no close frame: the network just went away
    # ... and one is gone without any $disconnect: the runner's post answers 410 and removes it.
    connections.subscribe("GoneConnection0=", job_id, "whoever", int(time.time()) + 600)
    job = wait_for(client, f"{stack.rest_url}/v1/jobs/{job_id}", timeout=30)
    assert job["status"] == "succeeded"
    assert connections.subscribers(job_id) == []


def test_a_late_subscriber_gets_the_terminal_state(stack: Stack) -> None:
    client = stack.client()
    receipt = submit(client, stack.rest_url, load_workflow("simple_invert_save.json"))
    wait_for(client, stack.rest_url + receipt.headers["Location"])
    socket = open_socket(stack)
    socket.send(json.dumps({"action": "subscribe", "job_id": receipt.json()["job_id"]}))
    frames = frames_until_terminal(socket)
    socket.close()
    assert [f["type"] for f in frames] == ["job.snapshot", "job.status"]
    assert frames[0]["job"]["status"] == frames[1]["status"] == "succeeded"
    assert frames[1]["outputs"]


def test_another_owners_job_is_not_found_and_shows_nothing(stack: Stack) -> None:
    job_id = submit(stack.client(0), stack.rest_url, load_workflow("simple_invert_save.json")).json()[
        "job_id"
    ]
    socket = open_socket(stack, key_index=1)
    for job in (job_id, "no-such-job"):
        socket.send(json.dumps({"action": "subscribe", "job_id": job}))
        frame = json.loads(socket.recv())
        assert (frame["type"], frame["code"]) == ("error", "not_found")
        assert job_id not in json.dumps(frame) or frame["message"].startswith("there is no job")
    socket.send(json.dumps({"action": "ping"}))
    assert json.loads(socket.recv())["type"] == "pong", "nothing about the job may arrive"
    socket.send(json.dumps({"action": "dance"}))
    assert json.loads(socket.recv())["code"] == "unknown_action"
    socket.close()


@pytest.mark.parametrize(
    "token",
    [
        None,
        "garbage",
        issue_token(SECRET, "key-owner", int(time.time()) - 600, 60)[0],  # expired
        issue_token("another-secret", "key-owner", int(time.time()), 300)[0],  # tampered
        "%C3%A9" + issue_token(SECRET, "key-owner", int(time.time()), 300)[0],  # not ASCII
        "%F0%9F%98%80.%C3%A9",
        "a" * 4000,
    ],
)
def test_bad_tokens_cannot_connect(stack: Stack, token: str | None) -> None:
    base = stack.endpoints["websocket_url"]
    url = base if token is None else f"{base}?token={token}"
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(url, timeout=5)
    assert refused.value.status_code in ((401, 403) if token is None else (401,))


def test_stack_writes_no_secret_to_disk(stack: Stack) -> None:
    assert SECRET not in Path(stack.state_dir / "stack.json").read_text()
