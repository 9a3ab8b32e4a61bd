"""Alarms on what goes wrong in production, and the job dashboard. docs/deploy.md's runbook says what each
alarm means and what to do about it."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import ServiceConfig
from infra.function import ServiceFunction
from shared.names import METRICS_NAMESPACE, SERVICE_NAME, GpuMetric, JobMetric

# Powertools Metrics adds this dimension to every metric it emits.
POWERTOOLS_SERVICE_DIMENSION = "service"
_PERIOD = Duration.minutes(1)
_COUNTS = (JobMetric.SUBMITTED, JobMetric.SUCCEEDED, JobMetric.FAILED, JobMetric.CANCELED)
_TIMINGS = (
    JobMetric.QUEUE_WAIT_MS,
    JobMetric.RUN_TIME_MS,
    JobMetric.ORCHESTRATION_OVERHEAD_MS,
    JobMetric.MODEL_FETCH_MS,
)
# Where a finished job's time went (shared.models.JobTimings).
_STAGES = (JobMetric.QUEUED_MS, JobMetric.EXECUTION_MS, JobMetric.UPLOAD_MS)
_INSIGHTS_NAMESPACE = "ECS/ContainerInsights"
_AT_LEAST = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
# Longer than the worst cold start in docs/deploy.md's timeline (about 20 minutes), so that a runner still
# booting is not an alarm, and a runner that cannot start (image, GPU, health check) is.
RUNNER_SHORTFALL_MINUTES = 25
# Tasks waiting for GPU instances that do not come (capacity, quota): the provider reserves over 100 %.
CAPACITY_SHORTFALL_MINUTES = 15
# Job failures: a share of the finished jobs in a window, once enough have finished to mean something.
FAILURE_RATE_WINDOW = Duration.minutes(15)
FAILURE_RATE_PERCENT = 25
FAILURE_RATE_MIN_JOBS = 5
# GPUs doing nothing while jobs are in hand: a hung ComfyUI or a stuck download.
GPU_IDLE_PERCENT = 5
GPU_IDLE_MINUTES = 15
# ComfyUI keeps models in GPU memory, so high use is normal; full for this long is out of memory.
GPU_MEMORY_FULL_PERCENT = 98
GPU_MEMORY_FULL_MINUTES = 15


def _fill(name: str) -> str:
    return f"FILL({name}, 0)"


def job_metric(name: str, statistic: str, period: Duration = _PERIOD) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={POWERTOOLS_SERVICE_DIMENSION: SERVICE_NAME},
        statistic=statistic,
        period=period,
        label=f"{name} {statistic}",
    )


class Observability(Construct):
    """What an operator watches; every alarm notifies ``alarmTopicArn`` when one is configured."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: ServiceConfig,
        alarm_topic: sns.ITopic | None,
        queue: sqs.IQueue,
        dead_letter_queue: sqs.IQueue,
        functions: Mapping[str, ServiceFunction],
        rest_api: apigw.RestApi,
        runner_service: ecs.Ec2Service,
        cluster: ecs.ICluster,
        capacity_provider_name: str,
        tables: Mapping[str, dynamodb.ITable],
    ) -> None:
        super().__init__(scope, construct_id)
        self._topic = alarm_topic
        self.alarms: list[cloudwatch.Alarm] = []

        self._config = config
        self._queue_alarms("", dead_letter_queue, [queue])
        # The same metrics again, for the dashboard.
        dlq_depth = dead_letter_queue.metric_approximate_number_of_messages_visible(
            statistic=cloudwatch.Stats.MAXIMUM, period=_PERIOD
        )
        oldest = queue.metric_approximate_age_of_oldest_message(
            statistic=cloudwatch.Stats.MAXIMUM, period=_PERIOD
        )
        for name, function in functions.items():
            self._alarm(
                f"{name}Errors",
                function.function.metric_errors(statistic=cloudwatch.Stats.SUM, period=Duration.minutes(5)),
                threshold=1,
                description=f"The {name} function raised errors",
            )
            self._alarm(
                f"{name}Throttles",
                function.function.metric_throttles(
                    statistic=cloudwatch.Stats.SUM, period=Duration.minutes(5)
                ),
                threshold=1,
                description=f"Lambda refused invocations of the {name} function: concurrency ran out",
            )
        for name, table in tables.items():
            self._alarm(
                f"{name}TableThrottles",
                _math(
                    f"{_fill('reads')} + {_fill('writes')}",
                    {
                        "reads": _table_metric(table, "ReadThrottleEvents"),
                        "writes": _table_metric(table, "WriteThrottleEvents"),
                    },
                    f"{name} throttled requests",
                    Duration.minutes(5),
                ),
                threshold=1,
                description=f"DynamoDB throttled requests to the {name} table",
            )

        service_dimensions = {"ClusterName": cluster.cluster_name, "ServiceName": runner_service.service_name}
        desired = _insights_metric("DesiredTaskCount", service_dimensions, "desired runners")
        running = _insights_metric("RunningTaskCount", service_dimensions, "running runners")
        self._alarm(
            "RunnersBelowDesired",
            _math(
                f"{_fill('desired')} - {_fill('running')}",
                {"desired": desired, "running": running},
                "Runners wanted but not running",
            ),
            threshold=1,
            evaluation_periods=RUNNER_SHORTFALL_MINUTES,
            description=(
                f"Fewer runners have been running than wanted for {RUNNER_SHORTFALL_MINUTES} minutes: "
                "tasks fail to start (image pull, GPU, ComfyUI health check) or cannot be placed"
            ),
        )
        reservation = cloudwatch.Metric(
            namespace="AWS/ECS/ManagedScaling",
            metric_name="CapacityProviderReservation",
            dimensions_map={
                "CapacityProviderName": capacity_provider_name,
                "ClusterName": cluster.cluster_name,
            },
            statistic=cloudwatch.Stats.MINIMUM,
            period=_PERIOD,
        )
        self._alarm(
            "GpuCapacityShortfall",
            reservation,
            threshold=100,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=CAPACITY_SHORTFALL_MINUTES,
            description=(
                "Runner tasks have waited for GPU instances that do not come: insufficient capacity in the "
                "AZs, the G-instance vCPU quota, or a launch failure"
            ),
        )

        finished = {
            "succeeded": job_metric(JobMetric.SUCCEEDED, cloudwatch.Stats.SUM, FAILURE_RATE_WINDOW),
            "failed": job_metric(JobMetric.FAILED, cloudwatch.Stats.SUM, FAILURE_RATE_WINDOW),
        }
        total = f"({_fill('succeeded')} + {_fill('failed')})"
        self._alarm(
            "JobFailureRate",
            _math(
                f"IF({total} >= {FAILURE_RATE_MIN_JOBS}, 100 * {_fill('failed')} / {total}, 0)",
                finished,
                "Failed jobs, % of finished",
                FAILURE_RATE_WINDOW,
            ),
            threshold=FAILURE_RATE_PERCENT,
            description=(
                f"At least {FAILURE_RATE_PERCENT} % of the jobs that finished in 15 minutes failed "
                f"(with {FAILURE_RATE_MIN_JOBS} or more finished)"
            ),
        )

        gpu_utilization = job_metric(GpuMetric.UTILIZATION, cloudwatch.Stats.AVERAGE)
        gpu_memory = job_metric(GpuMetric.MEMORY_UTILIZATION, cloudwatch.Stats.MAXIMUM)
        in_hand_jobs = queue.metric_approximate_number_of_messages_not_visible(
            statistic=cloudwatch.Stats.MINIMUM, period=_PERIOD
        )
        self._alarm(
            "GpuIdleWithJobsInHand",
            _math(
                # No GPU data (no runner, or no GPU) reads as busy: only a reporting, idle GPU alarms.
                f"IF({_fill('inhand')} > 0, FILL(gpu, 100), 100)",
                {"inhand": in_hand_jobs, "gpu": gpu_utilization},
                "GPU utilisation while jobs are in hand (%)",
            ),
            threshold=GPU_IDLE_PERCENT,
            comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluation_periods=GPU_IDLE_MINUTES,
            description=(
                f"Jobs have been in hand for {GPU_IDLE_MINUTES} minutes while the GPUs did nothing: "
                "ComfyUI hung, or a model download or upload is stuck"
            ),
        )
        self._alarm(
            "GpuMemoryFull",
            gpu_memory,
            threshold=GPU_MEMORY_FULL_PERCENT,
            evaluation_periods=GPU_MEMORY_FULL_MINUTES,
            description=(
                f"A GPU's memory has been at least {GPU_MEMORY_FULL_PERCENT} % full for "
                f"{GPU_MEMORY_FULL_MINUTES} minutes: workflows may fail out of memory"
            ),
        )
        self._alarm(
            "Api5xx",
            rest_api.metric_server_error(statistic=cloudwatch.Stats.SUM, period=Duration.minutes(5)),
            threshold=1,
            description="The REST API answered 5xx: by design no input yields one",
        )

        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", default_interval=Duration.hours(6))
        waiting = queue.metric_approximate_number_of_messages_visible(
            statistic=cloudwatch.Stats.MAXIMUM, period=_PERIOD, label="waiting"
        )
        in_hand = queue.metric_approximate_number_of_messages_not_visible(
            statistic=cloudwatch.Stats.MAXIMUM, period=_PERIOD, label="in hand"
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Jobs",
                left=[job_metric(name, cloudwatch.Stats.SUM) for name in _COUNTS],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Queue depth and runners",
                left=[waiting, in_hand, dlq_depth.with_(label="dead letters")],
                right=[running, desired],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="GPU (%)",
                left=[
                    gpu_utilization.with_(label="utilisation, average"),
                    gpu_memory.with_(label="memory, most used GPU"),
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Throttles",
                left=[
                    fn.function.metric_throttles(statistic=cloudwatch.Stats.SUM, period=_PERIOD, label=name)
                    for name, fn in functions.items()
                ],
                right=[reservation.with_(label="GPU capacity reservation %")],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            *(
                cloudwatch.GraphWidget(
                    title=name,
                    left=[job_metric(name, stat) for stat in ("p50", "p90", "p99")],
                    width=8,
                )
                for name in _TIMINGS
            )
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Job stages (ms, p50)",
                left=[job_metric(name, "p50") for name in _STAGES],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="GPU time and cost (sum)",
                left=[job_metric(JobMetric.GPU_SECONDS, cloudwatch.Stats.SUM)],
                right=[job_metric(JobMetric.GPU_COST_USD, cloudwatch.Stats.SUM)],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Oldest waiting job (s)", left=[oldest], width=8),
            cloudwatch.GraphWidget(
                title="Function errors",
                left=[
                    fn.function.metric_errors(statistic=cloudwatch.Stats.SUM, period=_PERIOD, label=name)
                    for name, fn in functions.items()
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="REST API",
                left=[
                    rest_api.metric_count(statistic=cloudwatch.Stats.SUM, period=_PERIOD, label="requests"),
                    rest_api.metric_client_error(statistic=cloudwatch.Stats.SUM, period=_PERIOD, label="4xx"),
                    rest_api.metric_server_error(statistic=cloudwatch.Stats.SUM, period=_PERIOD, label="5xx"),
                ],
                right=[rest_api.metric_latency(statistic="p90", period=_PERIOD, label="latency p90")],
                width=8,
            ),
        )

    def watch_pool(self, pool: str, dead_letter_queue: sqs.IQueue | None, queues: list[sqs.IQueue]) -> None:
        """A declared pool's queues (or the default pool's priority lane): the default pool's alarms."""
        self._queue_alarms(pool.title().replace("-", ""), dead_letter_queue, queues)

    def _queue_alarms(
        self, prefix: str, dead_letter_queue: sqs.IQueue | None, queues: list[sqs.IQueue]
    ) -> None:
        config = self._config
        if dead_letter_queue is not None:
            dlq_depth = dead_letter_queue.metric_approximate_number_of_messages_visible(
                statistic=cloudwatch.Stats.MAXIMUM, period=_PERIOD
            )
            # The dlq function drains the DLQ within seconds, so its depth alone is nearly always zero: every
            # message it receives counts too.
            dlq_received = dead_letter_queue.metric_number_of_messages_received(
                statistic=cloudwatch.Stats.SUM, period=_PERIOD
            )
            self._alarm(
                f"{prefix}DeadLetters",
                _math(
                    f"{_fill('received')} + {_fill('visible')}",
                    {"received": dlq_received, "visible": dlq_depth},
                    "Dead letters received or waiting",
                ),
                threshold=1,
                description="A job exhausted its attempts and its message reached the dead-letter queue",
            )
        for index, queue in enumerate(queues):
            oldest = queue.metric_approximate_age_of_oldest_message(
                statistic=cloudwatch.Stats.MAXIMUM, period=_PERIOD
            )
            self._alarm(
                f"{prefix}OldestJobWaiting{index or ''}",
                oldest,
                threshold=config.queue_age_alarm_seconds,
                evaluation_periods=5,
                description="A job waited longer than queueAgeAlarmSeconds: are the GPU runners scaling out?",
            )

    def _alarm(
        self,
        construct_id: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        description: str,
        evaluation_periods: int = 1,
        comparison: cloudwatch.ComparisonOperator = _AT_LEAST,
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=evaluation_periods,
            comparison_operator=comparison,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        if self._topic is not None:
            alarm.add_alarm_action(cloudwatch_actions.SnsAction(self._topic))
            alarm.add_ok_action(cloudwatch_actions.SnsAction(self._topic))
        self.alarms.append(alarm)
        return alarm


def _math(
    expression: str, metrics: Mapping[str, cloudwatch.IMetric], label: str, period: Duration = _PERIOD
) -> cloudwatch.MathExpression:
    return cloudwatch.MathExpression(
        expression=expression, using_metrics=dict(metrics), label=label, period=period
    )


def _table_metric(table: dynamodb.ITable, name: str) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace="AWS/DynamoDB",
        metric_name=name,
        dimensions_map={"TableName": table.table_name},
        statistic=cloudwatch.Stats.SUM,
        period=Duration.minutes(5),
    )


def _insights_metric(name: str, dimensions: dict[str, str], label: str) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=_INSIGHTS_NAMESPACE,
        metric_name=name,
        dimensions_map=dimensions,
        statistic=cloudwatch.Stats.MAXIMUM,
        period=_PERIOD,
        label=label,
    )
