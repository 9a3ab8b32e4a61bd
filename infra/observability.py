"""Alarms (DLQ not empty, oldest message age, function errors, API 5xx) and the job dashboard."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import ServiceConfig
from infra.function import ServiceFunction
from shared.names import METRICS_NAMESPACE, SERVICE_NAME, JobMetric

# Powertools Metrics adds this dimension to every metric it emits.
POWERTOOLS_SERVICE_DIMENSION = "service"
_PERIOD = Duration.minutes(1)
_COUNTS = (JobMetric.SUBMITTED, JobMetric.SUCCEEDED, JobMetric.FAILED, JobMetric.CANCELED)
_TIMINGS = (JobMetric.QUEUE_WAIT_MS, JobMetric.RUN_TIME_MS, JobMetric.ORCHESTRATION_OVERHEAD_MS)


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
    ) -> None:
        super().__init__(scope, construct_id)
        self._topic = alarm_topic
        self.alarms: list[cloudwatch.Alarm] = []

        dlq_depth = dead_letter_queue.metric_approximate_number_of_messages_visible(
            statistic=cloudwatch.Stats.MAXIMUM, period=_PERIOD
        )
        self._alarm(
            "DeadLetterQueueNotEmpty",
            dlq_depth,
            threshold=1,
            description="A job exhausted its attempts and its message reached the dead-letter queue",
        )
        oldest = queue.metric_approximate_age_of_oldest_message(
            statistic=cloudwatch.Stats.MAXIMUM, period=_PERIOD
        )
        self._alarm(
            "OldestJobWaiting",
            oldest,
            threshold=config.queue_age_alarm_seconds,
            evaluation_periods=5,
            description="A job waited longer than queueAgeAlarmSeconds: are the GPU runners scaling out?",
        )
        for name, function in functions.items():
            self._alarm(
                f"{name}Errors",
                function.function.metric_errors(statistic=cloudwatch.Stats.SUM, period=Duration.minutes(5)),
                threshold=1,
                description=f"The {name} function raised errors",
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
        running = cloudwatch.Metric(
            namespace="ECS/ContainerInsights",
            metric_name="RunningTaskCount",
            dimensions_map={"ClusterName": cluster.cluster_name, "ServiceName": runner_service.service_name},
            statistic=cloudwatch.Stats.MAXIMUM,
            period=_PERIOD,
            label="running runners",
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
                right=[running],
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

    def _alarm(
        self,
        construct_id: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        description: str,
        evaluation_periods: int = 1,
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=evaluation_periods,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        if self._topic is not None:
            alarm.add_alarm_action(cloudwatch_actions.SnsAction(self._topic))
            alarm.add_ok_action(cloudwatch_actions.SnsAction(self._topic))
        self.alarms.append(alarm)
        return alarm
