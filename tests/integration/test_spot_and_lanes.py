"""The Spot notice as a runner hears it (IMDSv2, from the local metadata service) and the lanes it reads."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from gpu_runner.lanes import Lanes
from gpu_runner.spot import instance_action, watch_for_notice
from local.imds import InstanceMetadata
from shared.aws.queue import JobQueue


def test_the_notice_is_read_with_a_token_and_heard_once_it_is_announced() -> None:
    imds = InstanceMetadata().start()
    try:

        async def scenario() -> tuple[Any, list[str], int]:
            async with aiohttp.ClientSession() as session:
                before = await instance_action(session, imds.url)
                # IMDSv2 only: a read without a token is refused.
                async with session.get(imds.url + "/latest/meta-data/spot/instance-action") as bare:
                    status = bare.status
            heard: list[str] = []
            stopping = asyncio.Event()
            watcher = asyncio.create_task(watch_for_notice(imds.url, 0.05, stopping, heard.append))
            await asyncio.sleep(0.2)
            assert heard == []
            imds.announce_interruption()
            await asyncio.wait_for(watcher, 5)
            return before, heard, status

        before, heard, status = asyncio.run(scenario())
        assert before is None and status == 401
        assert len(heard) == 1 and "terminate" in heard[0]
    finally:
        imds.stop()


def test_the_priority_lane_is_read_first_and_the_standard_one_waits_briefly(moto_aws: Any) -> None:
    clients, resources = moto_aws
    priority_url = clients.sqs.create_queue(QueueName="comfy-jobs-priority")["QueueUrl"]
    standard, priority = JobQueue(clients.sqs, resources.queue_url), JobQueue(clients.sqs, priority_url)
    standard.send("standard-1", group_id="t")
    priority.send("urgent-1", group_id="t")
    lanes = Lanes(standard, priority, priority_poll_wait_seconds=0)
    first, second = lanes.receive(20, 30), lanes.receive(20, 30)
    assert [(r.queue.url, r.message.parse().job_id) for r in (*first, *second)] == [
        (priority_url, "urgent-1"),
        (resources.queue_url, "standard-1"),
    ]
    assert lanes.receive(20, 30) == []
