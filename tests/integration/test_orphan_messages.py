"""A message whose job is not in the table: the API sends before it puts (functions/api/jobs_service.py).

A put still on its way is waited for and its job claimed; a message whose job never came goes back
for a later look while the put could still land, and is deleted once it is older than that."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from gpu_runner.orphans import ORPHAN_AFTER_SECONDS, RECHECK_DELAY_SECONDS, job_when_it_lands
from gpu_runner.runner import Runner
from shared.aws.jobs import JobStore
from shared.aws.queue import JobQueue, ReceivedMessage
from shared.models import Job
from shared.settings import RunnerSettings


def _counts(clients: Any, url: str) -> tuple[int, int]:
    """(visible, in flight) messages."""
    attributes = clients.sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def _receive(queue: JobQueue) -> ReceivedMessage:
    [message] = queue.receive(1, 0, 30)
    return message


def test_a_message_without_its_job_comes_back_later_and_is_dropped_past_the_bound(moto_aws: Any) -> None:
    clients, resources = moto_aws
    store = JobStore(clients.dynamodb, resources.jobs_table)
    queue = JobQueue(clients.sqs, resources.queue_url)
    queue.send("never-written", group_id="o")
    message = _receive(queue)
    assert message.sent_at_ms is not None and abs(message.sent_at_ms - time.time() * 1000) < 60_000

    assert asyncio.run(job_when_it_lands(store, queue, message, "never-written", pauses_s=(0,))) is None
    # Young: handed back with a delay (not deleted), to be looked at once no put can still be coming.
    assert _counts(clients, resources.queue_url) == (0, 1)
    assert queue.receive(1, 0, 30) == []

    queue.change_visibility(message.receipt_handle, 0)
    message = _receive(queue)
    later = message.sent_at_ms / 1000 + ORPHAN_AFTER_SECONDS + 1  # type: ignore[operator]
    found = asyncio.run(
        job_when_it_lands(store, queue, message, "never-written", pauses_s=(0,), clock=lambda: later)
    )
    assert found is None and _counts(clients, resources.queue_url) == (0, 0)
    assert store.get("never-written") is None
    assert RECHECK_DELAY_SECONDS < ORPHAN_AFTER_SECONDS


class PutLandsLate(JobStore):
    """The job's put lands while the runner reads again: after the runner's first read missed it."""

    def __init__(self, job: Job, *args: Any) -> None:
        super().__init__(*args)
        self._job = job
        self.reads = 0

    def get(self, job_id: str, consistent: bool = True) -> Job | None:
        self.reads += 1
        if self.reads == 2:
            assert self.create(self._job)
        return super().get(job_id, consistent)


def test_a_job_whose_put_lands_after_its_message_is_claimed(moto_aws: Any) -> None:
    clients, resources = moto_aws
    settings = RunnerSettings(
        comfyui_url="http://127.0.0.1:9",
        jobs_table_name=resources.jobs_table,
        jobs_queue_url=resources.queue_url,
        bucket_name=resources.bucket,
        runner_id="runner-late",
    )
    runner = Runner(settings, clients)
    now = int(time.time() * 1000)
    job = Job(job_id="late", owner="o", created_at=now, updated_at=now, deadline=now + 60_000)
    store = PutLandsLate(job, clients.dynamodb, resources.jobs_table)
    runner.deps.store = store
    runner.deps.queue.send("late", group_id="o")

    run = asyncio.run(runner.claim(_receive(runner.deps.queue)))
    assert run is not None and run.job.job_id == "late" and run.job.attempt == 1
    claimed = store.get("late")
    assert claimed is not None and claimed.lease_owner == "runner-late"
    assert store.reads >= 2


def test_an_interrupted_runner_gives_a_jobless_message_back_instead_of_dropping_it(moto_aws: Any) -> None:
    from gpu_runner.spot import return_unclaimed

    clients, resources = moto_aws
    store = JobStore(clients.dynamodb, resources.jobs_table)
    queue = JobQueue(clients.sqs, resources.queue_url)
    queue.send("put-not-landed-yet", group_id="o")
    asyncio.run(return_unclaimed(store, queue, _receive(queue), "put-not-landed-yet"))
    # Visible again at once: another runner waits for its job, or drops it past the bound.
    assert _receive(queue).parse().job_id == "put-not-landed-yet"
