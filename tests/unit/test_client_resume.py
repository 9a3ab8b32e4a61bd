"""The client resumes after the last event it saw: what the server replays (before any live frame) and what
comes live, or is logged while the subscription is made, reach the caller once each, in order, with
previews decoded and saved. A watch that knows where the job was needs no snapshot and waits for no
replay."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import websocket
from comfy_jobs.models import Preview, Progress, Snapshot, StatusChange
from comfy_jobs.watch import watch_job

from tests.unit.test_client_transport import JOB

RUNNING = {**JOB, "status": "running"}


def progress(seq: int, percent: float, **extra: Any) -> str:
    frame = {"type": "job.progress", "job_id": "j1", "node_id": "3", "node_type": "KSampler"}
    return json.dumps({**frame, "value": percent, "max": 100, "percent": percent, "seq": seq, **extra})


class ScriptedSocket:
    """Answers with the given frames, then drops (``None``) or stays open."""

    def __init__(self, frames: list[str | None]) -> None:
        self.frames = frames
        self.sent: list[dict[str, Any]] = []

    def send(self, text: str) -> None:
        self.sent.append(json.loads(text))

    def recv(self) -> str:
        frame = self.frames.pop(0)
        if frame is None:
            raise websocket.WebSocketConnectionClosedException("dropped")
        return frame

    def settimeout(self, timeout: float) -> None:
        pass

    def close(self, timeout: float = 1) -> None:
        pass


def test_a_dropped_watch_resumes_after_its_last_seq_and_yields_each_event_once_in_order(
    tmp_path: Path,
) -> None:
    jpeg = b"\xff\xd8\xff\xe0fake-jpeg"
    preview = {
        "type": "job.preview",
        "job_id": "j1",
        "node_id": "3",
        "value": 20,
        "max": 100,
        "content_type": "image/jpeg",
        "width": 4,
        "height": 4,
        "size": len(jpeg),
        "data": base64.b64encode(jpeg).decode(),
        "seq": 1_000_003,
    }
    first = ScriptedSocket(
        [
            json.dumps({"type": "job.snapshot", "job": RUNNING, "seq": 1_000_000}),
            progress(1_000_001, 10),
            json.dumps(preview),
            None,  # the network drops
        ]
    )
    second = ScriptedSocket(
        [
            # The replay comes first; a frame can come both ways.
            progress(1_000_003, 20, replay=True),  # already seen: the preview had this number
            progress(1_000_005, 30, replay=True),
            json.dumps({"type": "job.replayed", "job_id": "j1", "through": 1_000_005}),
            progress(1_000_009, 60),
            # Logged while the subscription was made: it comes after a newer live frame, and is dropped.
            progress(1_000_007, 50, replay=True),
            progress(1_000_009, 60, replay=True),
            progress(1_000_010, 70),
            json.dumps({"type": "job.status", "job_id": "j1", "status": "succeeded", "seq": 2_000_000}),
        ]
    )
    sockets = [first, second]
    events = list(watch_job("j1", lambda: "ws://x", connect=lambda _url, _t: sockets.pop(0), previews=True))
    assert first.sent == [{"action": "subscribe", "job_id": "j1", "previews": True}]
    assert second.sent == [{"action": "subscribe", "job_id": "j1", "previews": True, "after": 1_000_003}]
    assert [type(e) for e in events] == [
        Snapshot,
        Progress,
        Preview,
        Progress,
        Progress,
        Progress,
        StatusChange,
    ]
    seqs = [e.seq for e in events]
    assert seqs == [1_000_000, 1_000_001, 1_000_003, 1_000_005, 1_000_009, 1_000_010, 2_000_000]
    shown = events[2]
    assert isinstance(shown, Preview) and shown.image == jpeg
    saved = shown.save(tmp_path)
    assert saved is not None and saved.name == "j1-1000003.jpg" and saved.read_bytes() == jpeg


def test_a_watch_that_knows_the_seq_gets_no_snapshot_and_waits_for_no_replay() -> None:
    # Nothing was missed after the receipt's seq: the server sends nothing until the job moves, and a
    # drop resumes after the last frame with, again, nothing to replay.
    first = ScriptedSocket(
        [json.dumps({"type": "job.status", "job_id": "j1", "status": "running", "seq": 1_000_000}), None]
    )
    second = ScriptedSocket(
        [
            progress(1_000_001, 40),
            json.dumps({"type": "job.status", "job_id": "j1", "status": "succeeded", "seq": 2_000_000}),
        ]
    )
    sockets = [first, second]
    events = list(
        watch_job("j1", lambda: "ws://x", connect=lambda _url, _t: sockets.pop(0), progress_rate=0.2, after=0)
    )
    assert first.sent == [{"action": "subscribe", "job_id": "j1", "progress_rate": 0.2, "after": 0}]
    assert second.sent == [{"action": "subscribe", "job_id": "j1", "progress_rate": 0.2, "after": 1_000_000}]
    assert [(type(e), e.seq) for e in events] == [
        (StatusChange, 1_000_000),
        (Progress, 1_000_001),
        (StatusChange, 2_000_000),
    ]
