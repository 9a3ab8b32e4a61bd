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
    """A connection whose routes answer: no function runs at $connect, so a ping warms the one behind
    subscribe before a test races a short job with it."""
    token = stack.client(key_index).post(f"{stack.rest_url}/v1/ws-tokens", timeout=10)
    assert token.status_code == 201
    socket = websocket.create_connection(token.json()["url"], timeout=15)
    socket.send(json.dumps({"action": "ping"}))
    assert json.loads(socket.recv())["type"] == "pong"
    return socket


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
    # One subscriber drops its socket mid-job (nothing runs when it closes) ...
    socket = open_socket(stack)
    socket.send(json.dumps({"action": "subscribe", "job_id": job_id}))
    assert json.loads(socket.recv())["type"] == "job.snapshot"
    socket.sock.close()  # no close frame: the network just went away
    # ... and one was never connected here: for each, the runner's post answers 410 and deletes it.
    connections.subscribe("GoneConnection0=", job_id, int(time.time()) + 600)
    job = wait_for(client, f"{stack.rest_url}/v1/jobs/{job_id}", timeout=30)
    assert job["status"] == "succeeded"
    deadline = time.monotonic() + 10  # the terminal frame's posts land just after the job's last write
    while connections.subscribers(job_id) and time.monotonic() < deadline:
        time.sleep(0.1)
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


def test_a_subscriber_that_says_the_receipts_seq_gets_no_snapshot_and_few_messages(stack: Stack) -> None:
    """What the client library does after a submit: subscribe after the receipt's seq, at 0.2 a second."""
    socket = open_socket(stack)
    receipt = submit(stack.client(), stack.rest_url, sampler_workflow(40)).json()
    assert receipt["seq"] == 0, "a job just queued has had no state change"
    message = {"action": "subscribe", "job_id": receipt["job_id"], "after": 0, "progress_rate": 0.2}
    socket.send(json.dumps(message))
    frames = frames_until_terminal(socket)
    socket.close()
    assert "job.snapshot" not in [f["type"] for f in frames]
    assert all(f["seq"] > 0 for f in frames if "seq" in f)
    statuses = [f["status"] for f in frames if f["type"] == "job.status"]
    # (running comes live or replayed, unless it left in the moment the subscription was being made)
    assert statuses[-1] == "succeeded" and set(statuses) <= {"running", "succeeded"}
    # job.replayed only ends a replay that happened (the runner may have started before the subscribe).
    replays = [i for i, f in enumerate(frames) if f.get("replay")]
    ends = [i for i, f in enumerate(frames) if f["type"] == "job.replayed"]
    assert len(ends) <= 1 and (not ends or (replays and replays[0] < ends[0]))
    # About a second of sampling at 0.2 progress frames a second: the first, and at most one more.
    assert 1 <= len([f for f in frames if f["type"] == "job.progress"]) <= 2


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


def frames_until(socket: websocket.WebSocket, done: Any) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    while not frames or not done(frames[-1]):
        frames.append(json.loads(socket.recv()))
    return frames


def is_terminal(frame: dict[str, Any]) -> bool:
    return frame["type"] == "job.status" and frame["status"] in TERMINAL


def test_a_subscriber_that_drops_mid_job_resumes_after_its_last_seq_and_sees_every_event_once(
    stack: Stack,
) -> None:
    client = stack.client()
    job_id = submit(client, stack.rest_url, sampler_workflow(150)).json()["job_id"]
    # Two who stay: one asked for previews (so the job makes them, and logs their metadata), one did not.
    stayers = {"previews": open_socket(stack), "plain": open_socket(stack)}
    stayers["previews"].send(json.dumps({"action": "subscribe", "job_id": job_id, "previews": True}))
    stayers["plain"].send(json.dumps({"action": "subscribe", "job_id": job_id}))
    seen: dict[str, list[dict[str, Any]]] = {name: [] for name in stayers}
    threads = [
        threading.Thread(target=lambda n=n, s=s: seen[n].extend(frames_until(s, is_terminal)))
        for n, s in stayers.items()
    ]
    for thread in threads:
        thread.start()

    dropping = open_socket(stack)
    dropping.send(json.dumps({"action": "subscribe", "job_id": job_id, "previews": True}))
    first = frames_until(
        dropping, lambda f: f["type"] == "job.progress" and f["node_type"] == "KSampler" and f["value"] >= 10
    )
    dropping.sock.close()  # the network went away mid-job
    last_seq = max(f["seq"] for f in first if "seq" in f)
    # Away until the job has logged something after it (a milestone), so there is a replay to make.
    missed: list[dict[str, Any]] = []
    deadline = time.monotonic() + 20
    while not missed and time.monotonic() < deadline:
        time.sleep(0.2)
        answer = client.get(f"{stack.rest_url}/v1/jobs/{job_id}/events?after={last_seq}", timeout=10)
        missed = answer.json()["items"]
    resumed = open_socket(stack)
    resumed.send(json.dumps({"action": "subscribe", "job_id": job_id, "after": last_seq, "previews": True}))
    second = frames_until(resumed, is_terminal)
    resumed.close()
    for thread in threads:
        thread.join(30)

    # On the wire: the replay, in order and after last_seq, comes before any live frame and ends with
    # job.replayed; live frames go on (with, maybe, what was logged while the subscription was made).
    end = next(i for i, f in enumerate(second) if f["type"] == "job.replayed")
    replayed = second[:end]
    assert replayed and all(f.get("replay") for f in replayed), "nothing live before the replay ends"
    assert [f["seq"] for f in replayed] == sorted({f["seq"] for f in replayed})
    assert replayed[0]["seq"] > last_seq and second[end]["through"] == replayed[-1]["seq"]
    # What a client makes of it: hold live frames until the replay ends, order them, drop what it has.
    held = sorted(second[:end], key=lambda f: f["seq"]) + second[end + 1 :]
    # Live frames leave in order, each once; a frame the snapshot already reflects may also come live
    # with the snapshot's seq, and a client drops it as it drops every seq it has handled.
    for live in (
        [f["seq"] for f in first[1:] if "seq" in f],
        [f["seq"] for f in second[end + 1 :] if "seq" in f and not f.get("replay")],
    ):
        assert live == sorted(set(live)), "live frames in order, each once"
    events = [first[0]]
    for frame in [*first[1:], *held]:
        if "seq" in frame and frame["seq"] > events[-1]["seq"]:
            events.append(frame)
    seqs = [f["seq"] for f in events]
    logged = client.get(f"{stack.rest_url}/v1/jobs/{job_id}/events?after=0", timeout=10).json()["items"]
    # The snapshot holds what came before it; every logged event after it was seen.
    assert first[0]["type"] == "job.snapshot"
    assert {f["seq"] for f in logged if f["seq"] > first[0]["seq"]} <= set(seqs), "nothing was missed"
    assert [f for f in events if is_terminal(f)] == [events[-1]]
    assert events[-1]["status"] == "succeeded"

    # Previews: to those who asked, within one 32 KB billing unit, about one a second.
    previews = [f for f in seen["previews"] if f["type"] == "job.preview"]
    assert previews and not [f for f in seen["plain"] if f["type"] == "job.preview"]
    assert all(len(json.dumps(f, separators=(",", ":"))) <= 32 * 1024 for f in previews)
    span = (previews[-1]["ts"] - previews[0]["ts"]) / 1000
    assert len(previews) <= span + 2
    assert any(f["type"] == "job.preview" for f in second), "a resumed subscription keeps its previews"
    for socket in stayers.values():
        socket.close()
