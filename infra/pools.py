"""Runner pools in the stack: each pool's queues, and what its runners and the API are told of them.

The default pool keeps the data store's queue and DLQ (the stack as it was); each declared pool gets its
own queue and DLQ, and every pool a priority lane when a tier pays for one. Queues are tagged with their
pool and lane, so the local stack knows each by what only it has. The capacity, task and scaling of a
pool are :class:`infra.runner.GpuRunners`, given the pool.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import Duration, Tags
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import ServiceConfig
from infra.data import DataStore
from infra.environment import setting_env
from shared.names import LANE_TAG, POOL_TAG
from shared.pools import DEFAULT_POOL, PRIORITY_LANE, STANDARD_LANE, PoolRoute, PoolSpec, pool_routes_json
from shared.settings import RunnerSettings

# Where a Spot runner reads the interruption notice: the instance metadata service.
INSTANCE_METADATA_URL = "http://169.254.169.254"


@dataclass(frozen=True)
class PoolQueueSet:
    standard: sqs.IQueue
    dead_letter: sqs.IQueue
    priority: sqs.IQueue | None = None

    def all(self) -> list[sqs.IQueue]:
        """The queues runners read (and the API writes): the dead-letter queue is the DLQ function's."""
        return [q for q in (self.standard, self.priority) if q is not None]


def _tag(queue: sqs.Queue, pool: str, lane: str) -> sqs.Queue:
    Tags.of(queue).add(POOL_TAG, pool)
    Tags.of(queue).add(LANE_TAG, lane)
    return queue


def _jobs_queue(
    scope: Construct, construct_id: str, config: ServiceConfig, dlq: sqs.IQueue, pool: str, lane: str
) -> sqs.Queue:
    queue = sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        visibility_timeout=Duration.seconds(config.visibility_timeout_seconds),
        receive_message_wait_time=Duration.seconds(20),
        retention_period=Duration.days(config.queue_retention_days),
        dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=config.max_receive_count, queue=dlq),
    )
    return _tag(queue, pool, lane)


class PoolQueues(Construct):
    """Every pool's queues: ``sets[pool name]``."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: ServiceConfig, data: DataStore
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self.sets: dict[str, PoolQueueSet] = {}
        for pool in config.all_pools:
            if pool.name == DEFAULT_POOL:
                standard: sqs.IQueue = data.queue
                dlq: sqs.IQueue = data.dead_letter_queue
            else:
                title = pool.name.title().replace("-", "")
                dlq = _tag(
                    sqs.Queue(
                        self,
                        f"{title}DeadLetterQueue",
                        encryption=sqs.QueueEncryption.SQS_MANAGED,
                        enforce_ssl=True,
                        retention_period=Duration.days(config.dlq_retention_days),
                        visibility_timeout=Duration.seconds(180),
                    ),
                    pool.name,
                    "dlq",
                )
                standard = _jobs_queue(self, f"{title}Queue", config, dlq, pool.name, STANDARD_LANE)
            priority = None
            if config.priority_lanes:
                title = pool.name.title().replace("-", "")
                # Its own redrive to the pool's DLQ: a priority job fails like any other.
                priority = _jobs_queue(self, f"{title}PriorityQueue", config, dlq, pool.name, PRIORITY_LANE)
            self.sets[pool.name] = PoolQueueSet(standard, dlq, priority)

    def dead_letter_queues(self) -> list[sqs.IQueue]:
        return [s.dead_letter for s in self.sets.values()]

    def job_queues(self) -> list[sqs.IQueue]:
        return [q for s in self.sets.values() for q in s.all()]

    def routes_json(self) -> str:
        """``POOL_ROUTES`` for the API (queue URLs resolve at deploy time)."""
        routes = []
        for pool in self._config.all_pools:
            queues = self.sets[pool.name]
            routes.append(
                PoolRoute(
                    name=pool.name,
                    queue_url=queues.standard.queue_url,
                    priority_queue_url=queues.priority.queue_url if queues.priority else "",
                    templates=pool.templates,
                    models=pool.model_refs(),
                    max_runners=pool.max_runners,
                )
            )
        return pool_routes_json(routes)


def runner_pool_settings(pool: PoolSpec, queues: PoolQueueSet) -> Mapping[str, str]:
    """What a pool's runners are told on top of the service's settings: their queues, their pool, Spot."""
    settings = {
        setting_env(RunnerSettings, "jobs_queue_url"): queues.standard.queue_url,
        setting_env(RunnerSettings, "pool_name"): pool.name,
    }
    if queues.priority is not None:
        settings[setting_env(RunnerSettings, "priority_queue_url")] = queues.priority.queue_url
    if pool.spot:
        settings[setting_env(RunnerSettings, "spot_metadata_url")] = INSTANCE_METADATA_URL
        settings[setting_env(RunnerSettings, "release_on_sigterm")] = "true"
    return settings
