"""The webhook and event path: the jobs table's stream -> dispatcher -> EventBridge and the attempts
queue -> delivery worker -> receivers; failures to a dead-letter queue with an alarm.

The stream is the outbox: every committed status change, whoever wrote it. The event source mapping's
filter passes only writes whose status changed (old image vs new), so progress, lease renewals and any
other write to a job invoke nothing. Per job that is one dispatcher record per transition (batched up
to 100 per invocation) and one queued attempt per interested webhook (docs/webhooks.md, with the cost).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from aws_cdk import Duration, Stack, Tags
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.data import DataStore, object_arns
from infra.environment import setting_env
from infra.function import ServiceFunction
from shared.names import QUEUE_ROLE_TAG, WEBHOOK_DLQ_NAME, WEBHOOK_QUEUE_NAME, S3Prefix
from shared.settings import WebhookSettings

DELIVERY_TIMEOUT = Duration.seconds(90)
# A receiver answers within webhook_timeout_seconds (10 s); five in a row fit the function's timeout.
DELIVERY_BATCH = 5
TERMINAL = ["succeeded", "failed", "canceled", "expired"]


def transition_filters() -> list[dict[str, object]]:
    """Stream records of a status change: queued|running -> an outcome, and queued -> running.

    Lambda's filter cannot compare two fields, so each pattern names the old and the new status; a
    write that leaves the status as it was matches none (and costs no invocation).
    """
    return [
        {
            "eventName": ["MODIFY"],
            "dynamodb": {
                "OldImage": {"status": {"S": ["queued", "running"]}},
                "NewImage": {"status": {"S": TERMINAL}},
            },
        },
        {
            "eventName": ["MODIFY"],
            "dynamodb": {
                "OldImage": {"status": {"S": ["queued"]}},
                "NewImage": {"status": {"S": ["running"]}},
            },
        },
    ]


class Webhooks(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        data: DataStore,
        function: Callable[..., ServiceFunction],
        alarm_topic: sns.ITopic | None,
        dlq_retention: Duration,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=dlq_retention,
        )
        Tags.of(self.dead_letter_queue).add(QUEUE_ROLE_TAG, WEBHOOK_DLQ_NAME)
        self.queue = sqs.Queue(
            self,
            "AttemptsQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            # AWS advises six times the consuming function's timeout.
            visibility_timeout=Duration.seconds(DELIVERY_TIMEOUT.to_seconds() * 6),
            # A message whose handling keeps raising (not a failed attempt: those are handled) is parked.
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=5, queue=self.dead_letter_queue),
        )
        Tags.of(self.queue).add(QUEUE_ROLE_TAG, WEBHOOK_QUEUE_NAME)
        self.bus = events.EventBus(
            self,
            "Bus",
            event_bus_name=f"{Stack.of(self).stack_name}-jobs",
            description="Every job transition",
        )
        settings = {
            setting_env(WebhookSettings, "webhooks_table_name"): data.webhooks_table.table_name,
            setting_env(WebhookSettings, "webhook_queue_url"): self.queue.queue_url,
            setting_env(WebhookSettings, "webhook_dlq_url"): self.dead_letter_queue.queue_url,
            setting_env(WebhookSettings, "event_bus_name"): self.bus.event_bus_name,
        }
        self.dispatcher: ServiceFunction = function(
            "WebhookDispatcher",
            "functions.webhooks.handlers.dispatch_handler",
            "Job transitions from the jobs table's stream to EventBridge and the webhook attempts queue",
            WebhookSettings,
            settings,
            timeout=Duration.seconds(60),
        )
        self.dispatcher.function.add_event_source(
            event_sources.DynamoEventSource(
                data.jobs_table,
                starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                batch_size=100,
                report_batch_item_failures=True,
                # Until the record leaves the stream (24 h), then its place in the dead-letter queue.
                retry_attempts=10000,
                on_failure=event_sources.SqsDlq(self.dead_letter_queue),
                filters=[lambda_.FilterCriteria.filter(_raw(f)) for f in transition_filters()],
            )
        )
        self.deliverer: ServiceFunction = function(
            "WebhookDeliverer",
            "functions.webhooks.handlers.deliver_handler",
            "Sends one signed webhook attempt and queues the next one after a backoff",
            WebhookSettings,
            settings,
            timeout=DELIVERY_TIMEOUT,
        )
        self.deliverer.function.add_event_source(
            event_sources.SqsEventSource(
                self.queue, batch_size=DELIVERY_BATCH, report_batch_item_failures=True
            )
        )
        self._grant(data)
        alarm = cloudwatch.Alarm(
            self,
            "DeadLettersAlarm",
            metric=self.dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5), statistic="Maximum"
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description="A webhook event was given up after its last attempt, or a stream batch failed",
        )
        if alarm_topic is not None:
            alarm.add_alarm_action(cloudwatch_actions.SnsAction(alarm_topic))

    def _grant(self, data: DataStore) -> None:
        """Exactly the calls each function makes (functions/webhooks); the event sources grant their own
        reads (the stream; the queue) and the dispatcher's failure destination."""
        table = data.webhooks_table.table_arn
        outputs = object_arns(data.bucket, S3Prefix.OUTPUTS)
        dispatcher = self.dispatcher
        dispatcher.allow(["dynamodb:Query"], [table])
        dispatcher.allow(["sqs:SendMessage"], [self.queue.queue_arn])
        dispatcher.allow(["events:PutEvents"], [self.bus.event_bus_arn])
        # Presigned output URLs in the event are signed with the function's credentials.
        dispatcher.allow(["s3:GetObject"], [outputs])

        deliverer = self.deliverer
        deliverer.allow(["dynamodb:GetItem"], [data.jobs_table.table_arn])
        deliverer.allow(["dynamodb:GetItem", "dynamodb:UpdateItem"], [table])
        deliverer.allow(["sqs:SendMessage"], [self.queue.queue_arn, self.dead_letter_queue.queue_arn])
        deliverer.allow(["s3:GetObject"], [outputs])

    def grant_api(self, api: ServiceFunction, data: DataStore) -> None:
        """Endpoints and secrets, a job's deliveries; a redelivery is a queued attempt."""
        api.allow(
            [
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
                "dynamodb:Query",
            ],
            [data.webhooks_table.table_arn],
        )
        api.allow(["sqs:SendMessage"], [self.queue.queue_arn])


def _raw(pattern: dict[str, object]) -> dict[str, object]:
    """FilterCriteria.filter takes the pattern as a dict and writes it as JSON."""
    return json.loads(json.dumps(pattern))
