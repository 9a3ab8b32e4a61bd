"""Sends a job's message to its pool's queue, in its lane, grouped by its tenant (a fair queue)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from shared.aws.queue import JobQueue
from shared.models import Job
from shared.pools import PoolDirectory

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


class JobSender(Protocol):
    def send_job(self, job: Job) -> None: ...


class PoolQueues:
    """Every pool's queues; a job names its pool and lane, and goes to that pool's queue in that lane."""

    def __init__(self, client: SQSClient, directory: PoolDirectory) -> None:
        self._sqs = client
        self.directory = directory
        self._queues: dict[str, JobQueue] = {}

    def queue(self, url: str) -> JobQueue:
        if url not in self._queues:
            self._queues[url] = JobQueue(self._sqs, url)
        return self._queues[url]

    def send_job(self, job: Job) -> None:
        url = self.directory.get(job.pool).queue_for(job.lane)
        self.queue(url).send(job.job_id, group_id=job.owner)
