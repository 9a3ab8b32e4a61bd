"""A running job's cancel mark over moto: the API puts it, the runner's lookups see it and confirm on the
job, and nobody ever takes it for a subscriber."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from gpu_runner.cancel_hints import CancelHints
from gpu_runner.cancel_watch import CancelWatch
from gpu_runner.fanout import WebSocketNotifier
from gpu_runner.follow import StopRequest
from gpu_runner.lease import Lease
from shared.aws.connections import CANCEL_MARK, ConnectionStore
from shared.aws.jobs import JobStore
from shared.aws.queue import JobQueue
from shared.models import Job, JobStatus
from shared.notify import push_status
from tests.integration.conftest import ApiCall
from tests.integration.test_fanout import RecordingPoster

FAR = 2_000_000_000


def now_ms() -> int:
    return int(time.time() * 1000)


def running_job(store: JobStore, job_id: str = "j1") -> Job:
    store.create(Job(job_id=job_id, owner="o", created_at=now_ms(), updated_at=now_ms()))
    claimed = store.claim(job_id, "runner-a", now_ms(), now_ms() + 60_000)
    assert claimed is not None
    running = store.mark_running(job_id, claimed.attempt, now_ms())
    assert running is not None and running.status is JobStatus.RUNNING
    return running


def stores(moto_aws: Any) -> tuple[JobStore, ConnectionStore, JobQueue]:
    clients, resources = moto_aws
    return (
        JobStore(clients.dynamodb, resources.jobs_table),
        ConnectionStore(clients.dynamodb, resources.connections_table),
        JobQueue(clients.sqs, resources.queue_url),
    )


def watch_of(store: JobStore, queue: JobQueue, job: Job, interval: float, hints: CancelHints) -> CancelWatch:
    lease = Lease(store, queue, job.job_id, job.attempt, "receipt", 30, now_ms() + 60_000, StopRequest())
    return CancelWatch(store, job.job_id, lease, interval, hints)


def stop_reason(watch: CancelWatch) -> str | None:
    return watch._lease.stop.reason


def test_the_api_marks_a_running_jobs_cancel_and_the_mark_is_never_a_subscriber(
    api: ApiCall, simple_workflow: dict[str, Any], moto_aws: Any
) -> None:
    store, connections, _ = stores(moto_aws)
    job_id = api("POST", "/v1/jobs", {"workflow": simple_workflow}).body["job_id"]
    claimed = store.claim(job_id, "runner-a", now_ms(), now_ms() + 60_000)
    assert claimed is not None and store.mark_running(job_id, claimed.attempt, now_ms()) is not None
    connections.subscribe("c1", job_id, FAR)

    answer = api("DELETE", f"/v1/jobs/{job_id}")

    assert answer.status == 202 and answer.body["status"] == "running"
    lookup = connections.lookup(job_id)
    assert lookup.cancel_marked
    assert [s.connection_id for s in lookup.subscriptions] == ["c1"]
    assert connections.subscribers(job_id) == ["c1"]
    # The synchronous fan-out (API, dead-letter function) posts to c1 alone and deletes nothing else.
    poster = RecordingPoster()
    job = store.get(job_id)
    assert job is not None
    assert push_status(connections, poster, job, lambda key: key) == 1  # type: ignore[arg-type]
    assert [cid for cid, _ in poster.frames] == ["c1"]
    # Unsubscribing the one subscriber leaves the mark, and still no subscriber.
    connections.unsubscribe("c1", job_id)
    assert connections.subscribers(job_id) == [] and connections.lookup(job_id).cancel_marked


def test_a_cancel_that_is_not_written_takes_its_mark_back(
    api: ApiCall, simple_workflow: dict[str, Any], moto_aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, connections, _ = stores(moto_aws)
    job_id = api("POST", "/v1/jobs", {"workflow": simple_workflow}).body["job_id"]
    claimed = store.claim(job_id, "runner-a", now_ms(), now_ms() + 60_000)
    assert claimed is not None and store.mark_running(job_id, claimed.attempt, now_ms()) is not None
    marked_when_written: list[bool] = []
    request_cancel = JobStore.request_cancel

    def finishes_first(self: JobStore, job_id: str, owner: str, now: int) -> Job | None:
        # The job succeeds between the API's read and its write: the write finds it no longer running.
        marked_when_written.append(connections.lookup(job_id).cancel_marked)
        assert store.finish(job_id, claimed.attempt, JobStatus.SUCCEEDED, now_ms(), outputs=[]) is not None
        return request_cancel(self, job_id, owner, now)

    monkeypatch.setattr(JobStore, "request_cancel", finishes_first)
    answer = api("DELETE", f"/v1/jobs/{job_id}")

    assert answer.status == 409
    assert marked_when_written == [True], "the mark goes in before the cancel is written"
    assert not connections.lookup(job_id).cancel_marked


def test_without_its_mark_no_cancel_is_written_and_the_client_is_told_to_retry(
    api: ApiCall, simple_workflow: dict[str, Any], moto_aws: Any
) -> None:
    store, _, _ = stores(moto_aws)
    clients, resources = moto_aws
    job_id = api("POST", "/v1/jobs", {"workflow": simple_workflow}).body["job_id"]
    claimed = store.claim(job_id, "runner-a", now_ms(), now_ms() + 60_000)
    assert claimed is not None and store.mark_running(job_id, claimed.attempt, now_ms()) is not None
    clients.dynamodb.delete_table(TableName=resources.connections_table)

    answer = api("DELETE", f"/v1/jobs/{job_id}")

    assert answer.status == 503
    assert answer.headers["content-type"] == "application/problem+json"
    assert "cancel mark" in answer.body["detail"]
    job = store.get(job_id)
    assert job is not None and job.status is JobStatus.RUNNING and not job.cancel_requested


def test_a_mark_wakes_the_watch_which_stops_only_once_the_job_says_so(moto_aws: Any) -> None:
    store, connections, queue = stores(moto_aws)
    job = running_job(store)
    hints = CancelHints()
    # An interval far longer than the test: whatever the watch reads, a mark made it read.
    watch = watch_of(store, queue, job, 60.0, hints)

    async def scenario() -> None:
        watching = asyncio.create_task(watch.run())
        await asyncio.sleep(0)
        # A stale mark (no cancel written): the watch reads the job and goes on.
        connections.mark_cancel(job.job_id, FAR)
        hints.looked_up(job.job_id, connections.lookup(job.job_id).cancel_marked)
        while watch.polls < 1:
            await asyncio.sleep(0.01)
        assert stop_reason(watch) is None, "a mark alone cancels nothing"
        watching.cancel()

    asyncio.run(scenario())

    store.request_cancel(job.job_id, "o", now_ms())
    hints = CancelHints()
    watch = watch_of(store, queue, job, 60.0, hints)

    async def marked_and_written() -> None:
        watching = asyncio.create_task(watch.run())
        await asyncio.sleep(0)
        hints.looked_up(job.job_id, connections.lookup(job.job_id).cancel_marked)
        await asyncio.wait_for(watching, 10)

    asyncio.run(marked_and_written())
    assert stop_reason(watch) == "canceled" and watch.polls == 1


def test_the_fanouts_lookups_stand_in_for_the_poll_and_carry_the_cancel(moto_aws: Any) -> None:
    store, connections, queue = stores(moto_aws)
    job = running_job(store)
    connections.subscribe("c1", job.job_id, FAR, progress_rate=10)
    hints = CancelHints()
    poster = RecordingPoster()
    notifier = WebSocketNotifier(connections, poster, lambda key: key, hints)  # type: ignore[arg-type]
    watch = watch_of(store, queue, job, 0.4, hints)

    async def scenario() -> None:
        watching = asyncio.create_task(watch.run())
        step = 0
        # Frames flow for well over three intervals: each leaves with a lookup, so no poll is made.
        deadline = time.monotonic() + 1.3
        while time.monotonic() < deadline:
            step += 1
            await notifier.progress(job, "3", "KSampler", step % 20, 20)
            await asyncio.sleep(0.05)
        assert watch.polls == 0 and watch.skipped >= 2
        # The API's cancel: the mark, then the flag; the next frame's lookup carries it to the watch.
        connections.mark_cancel(job.job_id, FAR)
        store.request_cancel(job.job_id, "o", now_ms())
        while not watching.done():
            step += 1
            await notifier.progress(job, "3", "KSampler", step % 20, 20)
            await asyncio.sleep(0.05)
        await notifier.close()

    asyncio.run(scenario())
    assert stop_reason(watch) == "canceled"
    assert watch.polls >= 1
    assert poster.frames and {cid for cid, _ in poster.frames} == {"c1"}, "never a post to the mark"


def test_without_frames_the_watch_polls_as_before(moto_aws: Any) -> None:
    store, connections, queue = stores(moto_aws)
    job = running_job(store)
    hints = CancelHints()
    watch = watch_of(store, queue, job, 0.1, hints)

    async def scenario() -> None:
        watching = asyncio.create_task(watch.run())
        # A lookup long ago (frames stopped: a long node that reports nothing) does not count.
        hints.looked_up(job.job_id, False)
        await asyncio.sleep(0.35)
        assert watch.polls >= 1
        # No mark at all (as a cancel from before the mark existed): the poll alone hears it.
        store.request_cancel(job.job_id, "o", now_ms())
        await asyncio.wait_for(watching, 10)

    asyncio.run(scenario())
    assert stop_reason(watch) == "canceled"
    assert not connections.lookup(job.job_id).cancel_marked
    assert CANCEL_MARK not in connections.subscribers(job.job_id)


def test_a_queued_job_canceled_outright_ends_the_watch_without_frames(moto_aws: Any) -> None:
    store, _, queue = stores(moto_aws)
    store.create(Job(job_id="j1", owner="o", created_at=now_ms(), updated_at=now_ms()))
    claimed = store.claim("j1", "runner-a", now_ms(), now_ms() + 60_000)
    assert claimed is not None and claimed.status is JobStatus.QUEUED
    watch = watch_of(store, queue, claimed, 0.1, CancelHints())
    assert store.cancel_queued("j1", "o", now_ms()) is not None

    async def scenario() -> None:
        await asyncio.wait_for(watch.run(), 10)

    asyncio.run(scenario())
    assert watch._lease.lost, "ended elsewhere: this attempt acts no more"
