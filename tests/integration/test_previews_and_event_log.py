"""Previews and the job event log over moto: who gets previews, how often and how big; what a late reader
gets back (subscribe with ``after``, GET /v1/jobs/{id}/events); numbers that only grow across writers."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from functions.ws.handler import WsDeps, subscribe
from gpu_runner.comfy_binary import SentImage
from gpu_runner.events import AttemptEvents
from gpu_runner.fanout import WebSocketNotifier
from gpu_runner.previews import WS_BILLING_UNIT_BYTES, LivePreviews
from shared import frames
from shared.aws.connections import ConnectionStore
from shared.aws.events import EventLog
from shared.aws.jobs import JobStore
from shared.aws.storage import ArtifactStore
from shared.events import SEQ_BLOCK, replay, state_seq
from shared.models import ErrorCode, Job, JobError, JobStatus
from shared.settings import WebSocketSettings
from tests.integration.test_fanout import RecordingPoster
from tests.unit.test_event_numbers_and_previews import noise_jpeg

FAR = 2_000_000_000


class Holds:
    """An attempt that holds its lease throughout."""

    async def holds(self) -> bool:
        return True

    def act_before_ms(self) -> int | None:
        return None


def stored_job(store: JobStore, job_id: str = "j1", owner: str = "owner-a") -> Job:
    job = Job(job_id=job_id, owner=owner, created_at=1, updated_at=1, expires_at=FAR)
    store.create(job)
    return job


def running_job(store: JobStore, job_id: str = "j1") -> Job:
    stored_job(store, job_id)
    claimed = store.claim(job_id, "runner", 1_000, 2_000_000_000_000)
    assert claimed is not None
    running = store.mark_running(job_id, claimed.attempt, 1_000)
    assert running is not None
    return running


def test_previews_go_only_to_those_who_asked_within_one_billing_unit_at_the_bounded_rate(
    moto_aws: Any,
) -> None:
    """And a job no subscriber asked previews of makes none."""
    clients, resources = moto_aws
    connections = ConnectionStore(clients.dynamodb, resources.connections_table)
    log = EventLog(clients.dynamodb, resources.job_events_table)
    store = JobStore(clients.dynamodb, resources.jobs_table)
    job = running_job(store)
    connections.subscribe("wants", "j1", FAR, previews=True)
    connections.subscribe("plain", "j1", FAR)
    poster = RecordingPoster()
    image = SentImage(job.prompt_id, "3", "image/jpeg", noise_jpeg(512))
    interval = 0.2
    elapsed = 0.0

    async def scenario() -> None:
        nonlocal elapsed
        notifier = WebSocketNotifier(connections, poster, lambda key: key)  # type: ignore[arg-type]
        events = AttemptEvents(log, job, Holds())
        previews = LivePreviews("j1", notifier, events, Holds(), interval=interval)
        started = time.monotonic()
        previews.step("3", 0, None)  # the node started (executing): its maximum is not known yet
        for step in range(1, 41):  # a sampler sending a preview every 25 ms, for about a second
            previews.offer(image)  # ComfyUI sends a step's preview just before its progress frame
            previews.step("3", step, 40)
            await notifier.progress(job, "3", "KSampler", step, 40, seq=events.next())
            await asyncio.sleep(0.025)
        elapsed = time.monotonic() - started
        await previews.close()
        await events.drain()
        await notifier.status(store.finish("j1", job.attempt, JobStatus.SUCCEEDED, 2_000) or job)
        await notifier.close()

    asyncio.run(scenario())
    sent = [(cid, frame) for cid, frame in poster.frames if frame["type"] == "job.preview"]
    assert sent, "the subscriber who asked got previews"
    assert {cid for cid, _ in sent} == {"wants"}, "the one who did not ask got none"
    assert len(sent) <= elapsed / interval + 1, "no more than one per interval"
    for _, frame in sent:
        assert len(json.dumps(frame, separators=(",", ":"))) <= WS_BILLING_UNIT_BYTES
        assert frame["node_id"] == "3" and frame["content_type"] == "image/jpeg" and frame["data"]
        assert 1 <= frame["value"] <= 40 and frame["max"] in (None, 40)
    numbered = [frame["seq"] for cid, frame in poster.frames if cid == "wants"]
    assert numbered == sorted(numbered) and len(set(numbered)) == len(numbered)
    # Late readers get each preview's metadata, never its image.
    kept = [e for e in log.after("j1", 0) if e["type"] == "job.preview"]
    assert [e["seq"] for e in kept] == [f["seq"] for _, f in sent]
    assert all("data" not in e for e in kept)
    # And where no subscriber asked, nothing is made at all.
    a_job_nobody_asked_previews_for_makes_none(moto_aws)


def a_job_nobody_asked_previews_for_makes_none(moto_aws: Any) -> None:
    clients, resources = moto_aws
    connections = ConnectionStore(clients.dynamodb, resources.connections_table)
    store = JobStore(clients.dynamodb, resources.jobs_table)
    log = EventLog(clients.dynamodb, resources.job_events_table)
    job = running_job(store, "j2")
    connections.subscribe("plain", "j2", FAR)
    poster = RecordingPoster()
    made = 0

    async def scenario() -> None:
        nonlocal made
        notifier = WebSocketNotifier(connections, poster, lambda key: key)  # type: ignore[arg-type]
        events = AttemptEvents(log, job, Holds())
        previews = LivePreviews("j2", notifier, events, Holds(), interval=0.05)
        for step in range(10):
            previews.step("3", step, 10)
            previews.offer(SentImage(job.prompt_id, "3", "image/jpeg", noise_jpeg(64)))
            await asyncio.sleep(0.03)
        await previews.close()
        await events.drain()
        await notifier.close()
        made = previews.sent

    asyncio.run(scenario())
    assert made == 0
    assert not [f for _, f in poster.frames if f["type"] == "job.preview"]
    assert log.after("j2", 0) == []


def test_state_changes_are_numbered_by_their_own_write_whoever_makes_them(moto_aws: Any) -> None:
    clients, resources = moto_aws
    store = JobStore(clients.dynamodb, resources.jobs_table)
    running = running_job(store, "j1")
    # The dead-letter function fails the job while the runner still thinks it holds it.
    failed = store.fail_if_active("j1", JobError(code=ErrorCode.MAX_ATTEMPTS_EXCEEDED, message="x"), 5)
    assert failed is not None
    assert state_seq(running) == SEQ_BLOCK and state_seq(failed) == 2 * SEQ_BLOCK
    assert store.finish("j1", running.attempt, JobStatus.SUCCEEDED, 6) is None, "no number taken twice"
    stored_job(store, "j2")
    canceled = store.cancel_queued("j2", "owner-a", 7)
    assert canceled is not None and state_seq(canceled) == SEQ_BLOCK


def ws_deps(moto_aws: Any, poster: RecordingPoster) -> WsDeps:
    clients, resources = moto_aws
    settings = WebSocketSettings(
        jobs_table_name=resources.jobs_table,
        connections_table_name=resources.connections_table,
        job_events_table_name=resources.job_events_table,
        bucket_name=resources.bucket,
        websocket_management_url="https://ws.example/prod",
    )
    return WsDeps(
        settings,
        ConnectionStore(clients.dynamodb, resources.connections_table),
        JobStore(clients.dynamodb, resources.jobs_table),
        ArtifactStore(clients.s3, resources.bucket),
        {"https://ws.example/prod": poster},  # type: ignore[dict-item]
        EventLog(clients.dynamodb, resources.job_events_table),
    )


def ws_event(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "requestContext": {"domainName": "ws.example", "stage": "prod", "authorizer": {"owner": "owner-a"}},
        "body": json.dumps(body),
    }


def test_a_resumed_subscription_replays_what_was_missed_in_order_then_says_so(moto_aws: Any) -> None:
    """And a subscribe with a bad ``after`` or ``previews`` is refused, saying which; one that missed
    nothing gets nothing."""
    poster = RecordingPoster()
    deps = ws_deps(moto_aws, poster)
    running = running_job(deps.jobs)
    holds = Holds()

    async def run_attempt() -> Job:
        events = AttemptEvents(deps.events, running, holds)
        events.state_changed(running)
        for percent in (10, 30, 60, 80):
            running.progress = percent
            events.progress(running, "3", "KSampler", percent, 100)
        await events.drain()
        ended = deps.jobs.finish("j1", running.attempt, JobStatus.SUCCEEDED, 9)
        assert ended is not None
        return ended

    ended = asyncio.run(run_attempt())
    assert len(deps.events.after("j1", 0)) == 1, "one log entry for the job: its 50 % milestone"
    subscribe(deps, ws_event({"action": "subscribe", "job_id": "j1", "after": SEQ_BLOCK + 2}), "c1")
    sent = [frame for _, frame in poster.frames]
    assert [f["type"] for f in sent] == ["job.progress", "job.status", "job.replayed"]
    assert [f["percent"] for f in sent[:1]] == [60], "the milestone at 50 % only, after the seq given"
    assert sent[1]["status"] == "succeeded" and sent[1]["seq"] == state_seq(ended)
    assert all(f["replay"] for f in sent[:2]) and sent[2]["through"] == state_seq(ended)
    # From the start: the running state, read from the job item, comes first, each event once, in order.
    poster.frames.clear()
    subscribe(deps, ws_event({"action": "subscribe", "job_id": "j1", "after": 0}), "c1")
    sent = [frame for _, frame in poster.frames]
    assert [(f["type"], f.get("status")) for f in sent] == [
        ("job.status", "running"),
        ("job.progress", None),
        ("job.status", "succeeded"),
        ("job.replayed", None),
    ]
    assert [f["seq"] for f in sent[:3]] == [SEQ_BLOCK, SEQ_BLOCK + 3, state_seq(ended)]
    assert sent[0]["ts"] == ended.started_at
    # Caught up: nothing was missed, so nothing is sent; a job that has ended takes no subscription.
    poster.frames.clear()
    subscribe(deps, ws_event({"action": "subscribe", "job_id": "j1", "after": state_seq(ended)}), "c2")
    assert poster.frames == []
    assert deps.connections.subscribers("j1") == []
    # A bad `after` or `previews` is an error frame that names it, and subscribes nothing.
    subscribe_says_what_is_wrong_with_after_or_previews(moto_aws)
    # With nothing missed, nothing is sent, and what is logged meanwhile still arrives.
    a_subscription_that_says_where_the_job_was_gets_only_what_came_after_it(moto_aws)


class LoggingWhileSubscribing(ConnectionStore):
    """The runner logs a milestone while the subscription is being written, before it can see it."""

    def __init__(self, inner: ConnectionStore, log: EventLog, job_id: str, entry: dict[str, Any]) -> None:
        self.__dict__.update(inner.__dict__)
        self._log, self._job_id, self._entry = log, job_id, entry

    def subscribe(self, *args: Any, **kwargs: Any) -> None:
        self._log.append(self._job_id, self._entry, FAR)
        super().subscribe(*args, **kwargs)


def a_subscription_that_says_where_the_job_was_gets_only_what_came_after_it(moto_aws: Any) -> None:
    """No snapshot and no job.replayed when nothing was missed; what is logged while the subscription is
    made still reaches the client."""
    poster = RecordingPoster()
    deps = ws_deps(moto_aws, poster)
    running = running_job(deps.jobs, "j4")
    at = state_seq(running)
    subscribe(
        deps, ws_event({"action": "subscribe", "job_id": "j4", "after": at, "progress_rate": 0.2}), "c1"
    )
    assert poster.frames == [], "nothing was missed: nothing is sent"
    assert [(s.connection_id, s.progress_rate) for s in deps.connections.subscriptions("j4")] == [("c1", 0.2)]

    milestone = frames.numbered(frames.progress("j4", "3", "KSampler", 5, 20, 25.0), at + 1)
    deps.connections = LoggingWhileSubscribing(deps.connections, deps.events, "j4", milestone)
    subscribe(deps, ws_event({"action": "subscribe", "job_id": "j4", "after": at}), "c2")
    assert [(f["type"], f["seq"], f["replay"]) for _, f in poster.frames] == [("job.progress", at + 1, True)]
    assert sorted(deps.connections.subscribers("j4")) == ["c1", "c2"]


def subscribe_says_what_is_wrong_with_after_or_previews(moto_aws: Any) -> None:
    poster = RecordingPoster()
    deps = ws_deps(moto_aws, poster)
    stored_job(deps.jobs, "j3")
    for bad in ({"after": -1}, {"after": "12"}, {"after": True}, {"previews": "yes"}):
        subscribe(deps, ws_event({"action": "subscribe", "job_id": "j3", **bad}), "c3")
    assert [f["code"] for _, f in poster.frames] == ["bad_request"] * 4
    assert "'after'" in poster.frames[0][1]["message"] and "'previews'" in poster.frames[3][1]["message"]
    assert deps.connections.subscriptions("j3") == []


def test_the_events_route_returns_the_same_events_to_pollers(moto_aws: Any, api: Any) -> None:
    clients, resources = moto_aws
    store = JobStore(clients.dynamodb, resources.jobs_table)
    job = running_job(store)
    # Nothing logged: the running state is the job item's own.
    answer = api("GET", "/v1/jobs/j1/events")
    assert answer.status == 200
    assert [e["status"] for e in answer.body["items"]] == ["running"]
    assert answer.body["last_seq"] == SEQ_BLOCK == state_seq(job)
    assert api("GET", f"/v1/jobs/j1/events?after={SEQ_BLOCK}").body["items"] == []
    # As the runner logs its milestone (gpu_runner/events.py); asyncio.run here would take the handler's
    # event loop.
    log = EventLog(clients.dynamodb, resources.job_events_table)
    milestone = frames.progress("j1", "3", "KSampler", 10, 20, 50.0)
    log.append("j1", frames.numbered(milestone, SEQ_BLOCK + 4), FAR)
    answer = api("GET", f"/v1/jobs/j1/events?after={SEQ_BLOCK}")
    assert [e["type"] for e in answer.body["items"]] == ["job.progress"]
    assert answer.body["last_seq"] == SEQ_BLOCK + 4
    refused = api("GET", "/v1/jobs/j1/events?after=-1")
    assert refused.status == 422 and refused.headers["content-type"] == "application/problem+json"
    assert api("GET", "/v1/jobs/j1/events", owner="owner-b").status == 404


def test_a_retry_logs_the_running_of_the_attempt_before_which_the_job_item_no_longer_tells(
    moto_aws: Any,
) -> None:
    clients, resources = moto_aws
    store = JobStore(clients.dynamodb, resources.jobs_table)
    log = EventLog(clients.dynamodb, resources.job_events_table)
    first = running_job(store)
    # The first attempt's runner died; its lease ran out and another runner claims the job.
    claimed = store.claim("j1", "runner-2", 2_000_000_000_001, 2_000_000_100_000)
    assert claimed is not None and claimed.attempt == 2 and claimed.status is JobStatus.RUNNING

    async def second_attempt() -> Job:
        events = AttemptEvents(log, claimed, Holds())
        running = store.mark_running("j1", 2, 2_000_000_000_002)
        assert running is not None
        events.state_changed(running, before=claimed)
        await events.drain()
        assert events.entries_written == 1
        ended = store.finish("j1", 2, JobStatus.SUCCEEDED, 2_000_000_000_003)
        assert ended is not None
        return ended

    ended = asyncio.run(second_attempt())
    replayed = replay(ended, log.after("j1", 0), 0, None)
    assert [(e["status"], e["seq"]) for e in replayed] == [
        ("running", state_seq(first)),
        ("running", 2 * SEQ_BLOCK),
        ("succeeded", 3 * SEQ_BLOCK),
    ]
    assert [e["ts"] for e in replayed[:2]] == [first.started_at, 2_000_000_000_002]


def test_a_milestone_is_logged_only_once_the_attempt_has_run_the_progress_write_interval(
    moto_aws: Any,
) -> None:
    """A 10 s job logs no milestone (its late reader gets the outcome); a longer one logs the milestone it
    passed once it has run 15 s, once, while the live frame that passed it is flagged at once."""
    clients, resources = moto_aws
    log = EventLog(clients.dynamodb, resources.job_events_table)
    store = JobStore(clients.dynamodb, resources.jobs_table)
    job = running_job(store)
    now = [0.0]

    async def scenario() -> list[bool]:
        events = AttemptEvents(log, job, Holds(), progress_after_seconds=15, clock=lambda: now[0])
        events.state_changed(job)
        flags = []
        for second, percent in ((4, 30.0), (6, 55.0), (9, 70.0), (16, 80.0), (18, 90.0)):
            now[0] = second
            flags.append(events.progress(job.model_copy(update={"progress": percent}), "3", "K", 1, 2)[1])
        await events.drain()
        return flags

    flags = asyncio.run(scenario())
    assert flags == [False, True, False, False, False], "the frame that passed 50 % is the milestone"
    logged = log.after("j1", 0)
    assert [e["percent"] for e in logged] == [80.0], "logged once, at the first beat past 15 s"
