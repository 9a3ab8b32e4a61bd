"""Recorded scenarios that depend on timing: interrupt, queue delete/clear and reconnect.

``node_delay`` makes every node take a fixed time, standing in for the slow blur nodes of the recording,
so that an interrupt, a delete or a reconnect lands inside the same node as it did on the real server.
"""

from __future__ import annotations

import copy
import itertools
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from local.comfyui_sim import SimulatorServer
from local.comfyui_sim.testing import (
    Frame,
    RecordingSocket,
    http_records,
    load_transcript,
    prompt_ids,
    segments,
    shape,
    shapes,
    transcript_frames,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


@pytest.fixture
def slow_sim(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[SimulatorServer]:
    delay = getattr(request, "param", 0.25)
    with SimulatorServer(data_dir=tmp_path / "comfy", step_delay=0.01, node_delay=delay) as server:
        yield server


def submit(sim: SimulatorServer, recorded: dict[str, Any], client_id: str | None) -> str:
    body = copy.deepcopy(recorded)
    if client_id is not None and "client_id" in body:
        body["client_id"] = client_id
    response = requests.post(f"{sim.url}/prompt", json=body, timeout=10)
    assert response.status_code == 200
    prompt_id: str = response.json()["prompt_id"]
    return prompt_id


def text(kind: str, **fields: Any) -> Any:
    def match(frame: Frame) -> bool:
        if frame["kind"] != "text" or frame["type"] != kind:
            return False
        return all(frame["data"].get(k) == v for k, v in fields.items())

    return match


def history(sim: SimulatorServer, prompt_id: str) -> dict[str, Any]:
    body: dict[str, Any] = requests.get(f"{sim.url}/history/{prompt_id}", timeout=10).json()
    return body


def tick_free(items: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Fold repeated progress ticks into one, since how many land before an interrupt is timing."""
    out: list[tuple[Any, ...]] = []
    for item in items:
        if item[0] == "progress_state" and any(n[2] == "running" and "." not in n[3] for n in item[2]):
            item = ("progress_state", "tick")
        elif item[0] == "progress":
            item = ("progress", item[4])
        out.append(item)
        if len(out) >= 6 and out[-3:] == out[-6:-3]:
            del out[-3:]
    return out


def assert_interrupted_history(sim: SimulatorServer, prompt_id: str) -> None:
    entry = history(sim, prompt_id)[prompt_id]
    assert entry["status"]["status_str"] == "error"
    assert entry["status"]["completed"] is False
    assert [m[0] for m in entry["status"]["messages"]][-1] == "execution_interrupted"
    assert entry["outputs"] == {}


def test_interrupt_at_node_boundary_and_progress_tick(slow_sim: SimulatorServer) -> None:
    records = load_transcript("interrupt")
    expected = segments(transcript_frames(records, "main")[1:])
    posts = http_records(records, "POST", "/prompt")
    interrupts = http_records(records, "POST", "/interrupt")
    client_id = uuid.uuid4().hex
    main = RecordingSocket(slow_sim.ws_url, client_id)
    observer = RecordingSocket(slow_sim.ws_url, uuid.uuid4().hex)
    try:
        main.wait_count(1)
        observer.wait_count(1)

        # 1. Interrupt the running prompt by id while node 11 runs: it stops when node 12 starts.
        first = submit(slow_sim, posts[0]["req"], client_id)
        main.wait_for(text("executing", node="11"))
        response = requests.post(f"{slow_sim.url}/interrupt", json={"prompt_id": first}, timeout=10)
        assert (response.status_code, response.content) == (200, b"")
        end = main.wait_done(first)
        assert shapes(main.frames[1 : end + 1]) == shapes(expected[0])
        assert_interrupted_history(slow_sim, first)

        # 2. An interrupt naming a prompt that is not running is ignored.
        start = end + 1
        second = submit(slow_sim, posts[1]["req"], client_id)
        main.wait_for(text("executing", node="10"), start)
        stale = interrupts[1]["req"]
        requests.post(f"{slow_sim.url}/interrupt", json=stale, timeout=10)
        end = main.wait_done(second, start)
        assert shapes(main.frames[start : end + 1]) == shapes(expected[1])
        assert history(slow_sim, second)[second]["status"]["status_str"] == "success"

        # 3. A global interrupt during SaveImageWebsocket's progress loop stops it at the next tick.
        start = end + 1
        third = submit(slow_sim, posts[2]["req"], client_id)
        main.wait_for(text("progress", prompt_id=third), start)
        began = time.monotonic()
        requests.post(f"{slow_sim.url}/interrupt", timeout=10)
        end = main.wait_done(third, start)
        assert time.monotonic() - began < 1.0
        got = main.frames[start : end + 1]
        assert tick_free(shapes(got)) == tick_free(shapes(expected[2]))
        assert prompt_ids(got) == {third}
        ticks = [f for f in got if f["kind"] == "text" and f["type"] == "progress"]
        assert 1 <= len(ticks) < 64
        assert_interrupted_history(slow_sim, third)

        want_observer = transcript_frames(records, "observer")
        observer.wait_count(len(want_observer))
        assert shapes(observer.frames) == shapes(want_observer)
    finally:
        main.close()
        observer.close()


def split_status(frames: list[Frame]) -> tuple[list[Any], list[int]]:
    """Status frames race with execution frames; compare the two streams separately."""
    others = [shape(f) for f in frames if not (f["kind"] == "text" and f["type"] == "status")]
    statuses = [
        f["data"]["status"]["exec_info"]["queue_remaining"] for f in frames if f.get("type") == "status"
    ]
    return others, statuses


def test_queue_delete_and_clear(slow_sim: SimulatorServer) -> None:
    records = load_transcript("queue_delete")
    posts = http_records(records, "POST", "/prompt")
    queue_posts = http_records(records, "POST", "/queue")
    queue_gets = http_records(records, "GET", "/queue")
    client_id = uuid.uuid4().hex
    main = RecordingSocket(slow_sim.ws_url, client_id)
    try:
        main.wait_count(1)
        slow = submit(slow_sim, posts[0]["req"], client_id)
        main.wait_for(text("execution_start", prompt_id=slow))
        deleted = submit(slow_sim, posts[1]["req"], client_id)
        kept = submit(slow_sim, posts[2]["req"], client_id)

        queue = requests.get(f"{slow_sim.url}/queue", timeout=10).json()
        recorded = queue_gets[0]["resp"]
        assert [len(e) for e in queue["queue_running"]] == [len(e) for e in recorded["queue_running"]] == [5]
        assert [e[1] for e in queue["queue_running"]] == [slow]
        assert [e[1] for e in queue["queue_pending"]] == [deleted, kept]
        assert [e[0] for e in queue["queue_pending"]] == [1, 2]
        assert queue["queue_pending"][0][2] == recorded["queue_pending"][0][2]

        response = requests.post(f"{slow_sim.url}/queue", json={"delete": [deleted]}, timeout=10)
        assert (response.status_code, response.content) == (200, b"")
        queue = requests.get(f"{slow_sim.url}/queue", timeout=10).json()
        assert [e[1] for e in queue["queue_pending"]] == [kept]
        assert queue_posts[1]["req"]["delete"][1] == "not-a-prompt"
        requests.post(f"{slow_sim.url}/queue", json={"delete": [slow, "not-a-prompt"]}, timeout=10)
        main.wait_done(slow)
        end = main.wait_done(kept)
        assert history(slow_sim, deleted) == {}
        assert requests.get(f"{slow_sim.url}/queue", timeout=10).json() == queue_gets[-2]["resp"]

        start = end + 1
        second_slow = submit(slow_sim, posts[3]["req"], client_id)
        main.wait_for(text("execution_start", prompt_id=second_slow), start)
        cleared = submit(slow_sim, posts[4]["req"], client_id)
        response = requests.post(f"{slow_sim.url}/queue", json={"clear": True}, timeout=10)
        assert (response.status_code, response.content) == (200, b"")
        queue = requests.get(f"{slow_sim.url}/queue", timeout=10).json()
        assert ([e[1] for e in queue["queue_running"]], queue["queue_pending"]) == ([second_slow], [])
        main.wait_done(second_slow, start)
        assert history(slow_sim, cleared) == {}

        assert split_status(main.frames) == split_status(transcript_frames(records, "main"))
        assert deleted not in prompt_ids(main.frames)
        assert cleared not in prompt_ids(main.frames)
    finally:
        main.close()


@pytest.mark.parametrize("slow_sim", [0.5], indirect=True)
def test_reconnect_gets_status_then_current_node(slow_sim: SimulatorServer) -> None:
    records = load_transcript("reconnect")
    client_id = uuid.uuid4().hex
    first = RecordingSocket(slow_sim.ws_url, client_id)
    first.wait_count(1)
    prompt_id = submit(slow_sim, http_records(records, "POST", "/prompt")[0]["req"], client_id)
    first.wait_for(text("executing", node="11"))
    first.close()
    # Node 11 takes 0.5 s; come back while node 12 runs, as the recording did.
    time.sleep(0.75)
    again = RecordingSocket(slow_sim.ws_url, client_id)
    try:
        again.wait_done(prompt_id)
        want = transcript_frames(records, "main_reconnected")
        assert shapes(again.frames) == shapes(want)
        assert again.frames[1]["data"] == {"node": "12"}
        assert history(slow_sim, prompt_id)[prompt_id]["status"]["status_str"] == "success"
    finally:
        again.close()


def test_reconnect_when_idle_gets_only_status(slow_sim: SimulatorServer) -> None:
    client_id = uuid.uuid4().hex
    sock = RecordingSocket(slow_sim.ws_url, client_id)
    try:
        sock.wait_count(1)
        requests.get(f"{slow_sim.url}/prompt", timeout=10)
        time.sleep(0.1)
        assert [f["type"] for f in sock.frames] == ["status"]
    finally:
        sock.close()


def test_garbage_collection_pauses_the_worker_between_prompts_at_most_once_per_interval(
    tmp_path: Path,
) -> None:
    interval, pause = 0.8, 0.2
    with SimulatorServer(
        data_dir=tmp_path / "comfy", node_delay=0.1, gc_interval=interval, gc_pause=pause
    ) as sim:
        workflow = load_transcript("success")
        request = http_records(workflow, "POST", "/prompt")[0]["req"]
        ids = []
        for color in range(5):
            body = copy.deepcopy(request)
            body["prompt"]["1"]["inputs"]["color"] = color
            body.pop("prompt_id", None)
            ids.append(requests.post(f"{sim.url}/prompt", json=body, timeout=10).json()["prompt_id"])
        windows = []
        for prompt_id in ids:
            deadline = time.monotonic() + 20
            while not (entry := requests.get(f"{sim.url}/history/{prompt_id}", timeout=10).json()):
                assert time.monotonic() < deadline
                time.sleep(0.05)
            messages = dict(
                (event, data["timestamp"] / 1000) for event, data in entry[prompt_id]["status"]["messages"]
            )
            windows.append((messages["execution_start"], messages["execution_success"]))
        assert sim.simulator is not None
        collections = list(sim.simulator.executor.collections)
    # The first prompt is always followed by a collection, as ComfyUI's clock starts at 0.
    assert collections and collections[0][0] >= windows[0][1]
    # Never two collections within the interval, so with prompts shorter than it not after every one.
    starts = [start for start, _ in collections]
    assert all(later - earlier > interval for earlier, later in itertools.pairwise(starts))
    assert len(collections) < len(windows)
    # Each pause falls between two prompts: the worker starts nothing while it collects.
    for start, end in collections:
        assert end - start >= pause
        # (ComfyUI's timestamps are whole milliseconds.)
        assert not any(s < end - 0.001 and start < e for s, e in windows)
