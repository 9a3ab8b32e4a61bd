"""The runner's fan-out over moto's connections table, with a recording stand-in for @connections."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from gpu_runner.fanout import WebSocketNotifier
from shared.aws.connections import ConnectionStore
from shared.models import Job, JobStatus


class RecordingPoster:
    """Plays API Gateway's @connections: records frames, and answers 'gone' for the ids it is told."""

    def __init__(self, gone: set[str] | None = None) -> None:
        self.frames: list[tuple[str, dict[str, Any]]] = []
        self.gone = gone or set()

    def post(self, connection_id: str, frame: dict[str, Any], send_before_ms: int | None = None) -> bool:
        if connection_id in self.gone:
            return False
        self.frames.append((connection_id, frame))
        return True


def job(status: JobStatus, progress: float = 0) -> Job:
    return Job(job_id="j1", owner="o", status=status, created_at=1, updated_at=1, progress=progress)


def test_a_subscriber_of_a_moment_ago_still_gets_the_terminal_frame(moto_aws: Any) -> None:
    clients, resources = moto_aws
    connections = ConnectionStore(clients.dynamodb, resources.connections_table)
    poster = RecordingPoster()

    async def scenario() -> None:
        notifier = WebSocketNotifier(connections, poster, lambda key: f"https://example/{key}")  # type: ignore[arg-type]
        await notifier.progress(job(JobStatus.RUNNING, 10), "3", "KSampler", 1, 20)  # caches "no subscribers"
        await asyncio.sleep(0.2)
        connections.subscribe("c1", "j1", 2_000_000_000)
        await notifier.status(job(JobStatus.SUCCEEDED, 100))
        await notifier.close()

    asyncio.run(scenario())
    assert [frame["status"] for _, frame in poster.frames if frame["type"] == "job.status"] == ["succeeded"]


def test_progress_is_coalesced_and_gone_subscribers_are_removed(moto_aws: Any) -> None:
    clients, resources = moto_aws
    connections = ConnectionStore(clients.dynamodb, resources.connections_table)
    # At the highest rate a subscriber may ask for: the job's own coalescing is the limit.
    connections.subscribe("alive", "j1", 2_000_000_000, progress_rate=10)
    connections.subscribe("gone", "j1", 2_000_000_000, progress_rate=10)
    connections.subscribe("gone", "j2", 2_000_000_000)
    poster = RecordingPoster(gone={"gone"})

    elapsed = 0.0

    async def scenario() -> None:
        nonlocal elapsed
        notifier = WebSocketNotifier(connections, poster, lambda key: key)  # type: ignore[arg-type]
        started = time.monotonic()
        for step in range(1, 51):  # fifty steps, about half a second on an idle machine
            await notifier.progress(job(JobStatus.RUNNING, step), "3", "KSampler", step, 50)
            await asyncio.sleep(0.01)
        await notifier.status(job(JobStatus.SUCCEEDED, 100))
        await notifier.close()
        elapsed = time.monotonic() - started

    asyncio.run(scenario())
    progress = [frame for _, frame in poster.frames if frame["type"] == "job.progress"]
    # At most one frame per 100 ms, however slow the machine made the fifty steps.
    assert 2 <= len(progress) <= min(49, 10 * elapsed + 2), "about ten a second, never one per step"
    assert [f["percent"] for f in progress] == sorted(f["percent"] for f in progress)
    assert progress[-1]["value"] == 50, "the newest progress is never dropped"
    assert poster.frames[-1][1]["type"] == "job.status"
    assert connections.subscribers("j1") == ["alive"]
    # The 410 deletes that one subscription: the fan-out of another job finds its own when it posts.
    assert connections.subscribers("j2") == ["gone"]


def test_a_subscriber_of_a_moment_ago_gets_the_next_progress_frame(moto_aws: Any) -> None:
    clients, resources = moto_aws
    connections = ConnectionStore(clients.dynamodb, resources.connections_table)
    poster = RecordingPoster()

    async def scenario() -> None:
        notifier = WebSocketNotifier(connections, poster, lambda key: key)  # type: ignore[arg-type]
        await notifier.progress(job(JobStatus.RUNNING, 10), "3", "KSampler", 1, 20)
        await asyncio.sleep(0.2)
        connections.subscribe("c1", "j1", 2_000_000_000)
        await notifier.progress(job(JobStatus.RUNNING, 15), "3", "KSampler", 2, 20)
        await asyncio.sleep(0.3)
        await notifier.status(job(JobStatus.SUCCEEDED, 100))
        await notifier.close()

    asyncio.run(scenario())
    assert [(f["type"], f.get("value")) for _, f in poster.frames] == [
        ("job.progress", 2),
        ("job.status", None),
    ]


class Attempt:
    """A guard as an attempt's lease gives it: it can lose its job between frames."""

    def __init__(self) -> None:
        self.lost = False

    async def holds(self) -> bool:
        return not self.lost

    def act_before_ms(self) -> int | None:
        return None


def test_no_frame_of_an_attempt_that_lost_leaves_and_nothing_follows_a_terminal_frame(
    moto_aws: Any,
) -> None:
    clients, resources = moto_aws
    connections = ConnectionStore(clients.dynamodb, resources.connections_table)
    connections.subscribe("c1", "j1", 2_000_000_000)
    poster = RecordingPoster()
    attempt = Attempt()

    async def scenario() -> None:
        notifier = WebSocketNotifier(connections, poster, lambda key: key)  # type: ignore[arg-type]
        await notifier.progress(job(JobStatus.RUNNING, 10), "3", "KSampler", 1, 20, attempt)
        await asyncio.sleep(0.3)
        attempt.lost = True
        await notifier.progress(job(JobStatus.RUNNING, 15), "3", "KSampler", 2, 20, attempt)
        await asyncio.sleep(0.3)
        await notifier.status(job(JobStatus.CANCELED, 15))
        await notifier.progress(job(JobStatus.RUNNING, 20), "3", "KSampler", 3, 20)
        await notifier.close()

    asyncio.run(scenario())
    assert [(f["type"], f.get("value")) for _, f in poster.frames] == [
        ("job.progress", 1),
        ("job.status", None),
    ]


def test_each_subscriber_gets_progress_at_its_own_rate_and_only_when_the_percent_moves(moto_aws: Any) -> None:
    clients, resources = moto_aws
    connections = ConnectionStore(clients.dynamodb, resources.connections_table)
    connections.subscribe("eager", "j1", 2_000_000_000, progress_rate=5)
    connections.subscribe("default", "j1", 2_000_000_000, progress_rate=1)
    connections.subscribe("quiet", "j1", 2_000_000_000, progress_rate=0)

    async def scenario() -> None:
        notifier = WebSocketNotifier(connections, poster, lambda key: key)  # type: ignore[arg-type]
        for step in range(1, 9):
            # Two frames per percent: ComfyUI's node and step frames often leave it unchanged.
            await notifier.progress(job(JobStatus.RUNNING, 10 + step // 2), "3", "KSampler", step, 8)
            await asyncio.sleep(0.15)
        await notifier.status(job(JobStatus.SUCCEEDED, 100))
        await notifier.close()

    poster = RecordingPoster()
    asyncio.run(scenario())
    by_connection: dict[str, list[dict[str, Any]]] = {}
    for connection_id, frame in poster.frames:
        by_connection.setdefault(connection_id, []).append(frame)
    eager = [f["percent"] for f in by_connection["eager"] if f["type"] == "job.progress"]
    assert len(eager) == len(set(eager)) >= 3, "never the same percent twice"
    one_a_second = [f for f in by_connection["default"] if f["type"] == "job.progress"]
    assert 1 <= len(one_a_second) <= 2, "about one a second over 1.2 s"
    assert [f["type"] for f in by_connection["quiet"]] == ["job.status"], "status frames reach everyone"
    assert all(frames[-1]["type"] == "job.status" for frames in by_connection.values())
