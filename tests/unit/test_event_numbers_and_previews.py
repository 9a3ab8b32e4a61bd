"""Event numbers that only grow whoever writes, the replay a late reader gets, and previews' size bound."""

from __future__ import annotations

import base64
import io
import json
import random

from PIL import Image

from gpu_runner.previews import INLINE_MAX_BYTES, MAX_SIDE, WS_BILLING_UNIT_BYTES, encode
from shared import frames
from shared.events import SEQ_BLOCK, EventNumbers, earlier_running, milestone_crossed, replay, state_seq
from shared.models import Job, JobStatus


def job(status: JobStatus = JobStatus.RUNNING, event_seq: int = 1, **extra: object) -> Job:
    return Job(
        job_id="j1", owner="o", status=status, created_at=1, updated_at=2, event_seq=event_seq, **extra
    )


def noise_jpeg(side: int, quality: int = 95) -> bytes:
    """The worst case for a JPEG: a sampler's first preview, all noise, at ComfyUI's preview size."""
    pixels = random.Random(7).randbytes(side * side * 3)
    buffer = io.BytesIO()
    Image.frombytes("RGB", (side, side), pixels).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def test_events_after_a_state_change_are_numbered_above_it_and_below_the_next() -> None:
    numbers = EventNumbers(job(event_seq=1))
    running = numbers.moved_on(job(event_seq=1))
    following = [numbers.next() for _ in range(3)]
    # Another writer's state change (a cancel, the dead-letter function) moved the job's counter on.
    terminal = state_seq(job(JobStatus.FAILED, event_seq=2))
    assert running == SEQ_BLOCK
    assert following == [SEQ_BLOCK + 1, SEQ_BLOCK + 2, SEQ_BLOCK + 3]
    assert all(running < seq < terminal for seq in following if seq is not None)
    # The writer's own next state change starts a fresh block above everything before it.
    assert numbers.moved_on(job(event_seq=3)) == 3 * SEQ_BLOCK
    assert numbers.next() == 3 * SEQ_BLOCK + 1


def test_one_milestone_is_logged_a_job_never_every_beat() -> None:
    assert milestone_crossed(10, 20) is None
    assert milestone_crossed(20, 26) is None
    assert milestone_crossed(40, 60) == 50
    assert milestone_crossed(24, 80) == 50, "a jump logs the milestone passed"
    assert milestone_crossed(50, 90) is None, "passed already: a later attempt does not log it again"


def test_a_replay_is_in_order_after_the_given_seq_and_ends_with_the_terminal_state_from_the_job() -> None:
    ended = job(JobStatus.SUCCEEDED, event_seq=2, finished_at=9, progress=100)
    logged = [
        {"type": "job.progress", "seq": SEQ_BLOCK + 7, "percent": 50},
        {"type": "job.status", "seq": SEQ_BLOCK, "status": "running"},
        # A stale runner's entry written after the job ended: never replayed after the terminal state.
        {"type": "job.progress", "seq": 2 * SEQ_BLOCK + 1, "percent": 60},
    ]
    events = replay(ended, logged, SEQ_BLOCK, None)
    assert [e["seq"] for e in events] == [SEQ_BLOCK + 7, 2 * SEQ_BLOCK]
    assert events[-1]["type"] == "job.status" and events[-1]["status"] == "succeeded"
    assert replay(ended, logged, 2 * SEQ_BLOCK, None) == [], "nothing after the terminal state"


def test_the_latest_running_is_replayed_from_the_job_item_each_event_once() -> None:
    running = job(JobStatus.RUNNING, event_seq=1, started_at=5)
    assert replay(running, [], 0, None) == [
        {"type": "job.status", "job_id": "j1", "status": "running", "ts": 5, "seq": SEQ_BLOCK}
    ]
    assert replay(running, [], SEQ_BLOCK, None) == []
    # Ended: the running state was the state change just before the terminal one.
    milestone = {"type": "job.progress", "seq": SEQ_BLOCK + 3, "percent": 55}
    ended = job(JobStatus.FAILED, event_seq=2, started_at=5, finished_at=9)
    events = replay(ended, [milestone], 0, None)
    assert [(e["type"], e["seq"]) for e in events] == [
        ("job.status", SEQ_BLOCK),
        ("job.progress", SEQ_BLOCK + 3),
        ("job.status", 2 * SEQ_BLOCK),
    ]
    assert events[0]["status"] == "running" and events[0]["ts"] == 5
    # A log written before the running state was derived holds it too: replayed once all the same.
    logged_running = {"type": "job.status", "seq": SEQ_BLOCK, "status": "running", "ts": 4}
    assert [e["seq"] for e in replay(ended, [logged_running, milestone], 0, None)] == [
        SEQ_BLOCK,
        SEQ_BLOCK + 3,
        2 * SEQ_BLOCK,
    ]
    # Never started (canceled or expired in the queue): no running state to tell.
    canceled = job(JobStatus.CANCELED, event_seq=1, finished_at=9)
    assert [e["status"] for e in replay(canceled, [], 0, None)] == ["canceled"]
    assert replay(job(JobStatus.QUEUED, event_seq=0), [], 0, None) == []


def test_a_retry_logs_the_running_it_hides_and_a_first_run_logs_none() -> None:
    queued = job(JobStatus.QUEUED, event_seq=0)
    assert earlier_running(queued) is None
    restarted = job(JobStatus.RUNNING, event_seq=1, started_at=5, attempt=2)
    assert earlier_running(restarted) == {
        "type": "job.status",
        "job_id": "j1",
        "status": "running",
        "ts": 5,
        "seq": SEQ_BLOCK,
    }


def test_a_preview_fits_one_websocket_billing_unit_whatever_comfyui_sent() -> None:
    for side in (64, 512, 1024):
        encoded = encode(noise_jpeg(side))
        assert max(encoded.width, encoded.height) <= MAX_SIDE
        assert len(encoded.jpeg) <= INLINE_MAX_BYTES
        frame = frames.numbered(
            frames.preview(
                "0" * 36,
                "3",
                19,
                20,
                content_type="image/jpeg",
                width=encoded.width,
                height=encoded.height,
                size=len(encoded.jpeg),
                data=base64.b64encode(encoded.jpeg).decode(),
            ),
            123 * SEQ_BLOCK + 999_999,
        )
        assert len(json.dumps(frame, separators=(",", ":"))) <= WS_BILLING_UNIT_BYTES
        assert Image.open(io.BytesIO(encoded.jpeg)).format == "JPEG"
