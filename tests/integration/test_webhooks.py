"""The webhook path over moto in-process: the jobs table's stream (filtered as the template's mapping
is) -> the dispatcher -> EventBridge and the attempts queue -> the delivery function -> a real receiver
on 127.0.0.1 that verifies every signature with the ``standardwebhooks`` package."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from functions.webhooks.dispatch import transitions
from infra.webhooks import transition_filters
from local.dlq_source import SqsEventSource
from local.stream_source import StreamEventSource
from local.webhook_receiver import Reply, WebhookReceiver
from shared.aws.items import job_to_item
from shared.aws.jobs import JobStore
from shared.aws.webhooks import WebhookStore
from shared.models import ErrorCode, Job, JobError, JobStatus, JobWebhook
from shared.webhooks.models import DeliveryStatus, Endpoint, JobSecret
from shared.webhooks.signing import new_secret

OWNER = "tenant-a"


class Pipeline:
    def __init__(self, clients: Any, resources: Any) -> None:
        from functions.webhooks import handlers

        self.jobs = JobStore(clients.dynamodb, resources.jobs_table)
        self.webhooks = WebhookStore(clients.dynamodb, resources.webhooks_table)
        self.sqs = clients.sqs
        self.resources = resources
        # Lambda's stream poller is not an SDK client; moto serves streams at the regional endpoint.
        streams = boto3.client(
            "dynamodbstreams", region_name="us-east-1", config=Config(account_id_endpoint_mode="disabled")
        )
        self.stream = StreamEventSource(
            clients.dynamodb,
            streams,
            resources.jobs_table,
            handlers.dispatch_handler,
            patterns=transition_filters(),
            batch_size=100,
            region="us-east-1",
            name="dispatch",
        )
        self.stream.open()
        self.attempts = SqsEventSource(
            clients, resources.webhook_queue_url, handlers.deliver_handler, "us-east-1", name="deliver"
        )

    def run_until(self, done: Callable[[], bool], seconds: float = 10.0) -> None:
        deadline = time.time() + seconds
        while time.time() < deadline:
            self.stream.poll_once()
            self.attempts.poll_once(wait_seconds=0)
            if done():
                return
            time.sleep(0.05)
        raise AssertionError("the webhook pipeline did not get there in time")

    def new_job(self, job_id: str, webhook: JobWebhook | None = None) -> Job:
        now = int(time.time() * 1000)
        job = Job(job_id=job_id, owner=OWNER, created_at=now, updated_at=now, webhook=webhook)
        self.jobs.create(job)
        return job

    def succeed(self, job_id: str) -> None:
        now = int(time.time() * 1000)
        claimed = self.jobs.claim(job_id, "runner-1", now, now + 60_000)
        assert claimed is not None
        assert self.jobs.mark_running(job_id, claimed.attempt, now + 1) is not None
        assert self.jobs.record_progress(job_id, claimed.attempt, 50.0, now + 2) is not None
        assert self.jobs.finish(job_id, claimed.attempt, JobStatus.SUCCEEDED, now + 3) is not None

    def endpoint(self, receiver: WebhookReceiver, path: str, events: list[str] | None = None) -> Endpoint:
        endpoint = Endpoint(
            endpoint_id="wh_" + path.strip("/"),
            owner=OWNER,
            url=receiver.url(path),
            events=events or [],
            secret=new_secret(),
            created_at=int(time.time() * 1000),
        )
        self.webhooks.create_endpoint(endpoint)
        receiver.secrets[path] = endpoint.secret
        return endpoint

    def dead_letters(self) -> list[dict[str, Any]]:
        messages = self.sqs.receive_message(QueueUrl=self.resources.webhook_dlq_url, MaxNumberOfMessages=10)
        return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


@pytest.fixture
def pipeline(moto_aws: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    from functions.webhooks import handlers

    clients, resources = moto_aws
    env = {
        "JOBS_TABLE_NAME": resources.jobs_table,
        "BUCKET_NAME": resources.bucket,
        "WEBHOOKS_TABLE_NAME": resources.webhooks_table,
        "WEBHOOK_QUEUE_URL": resources.webhook_queue_url,
        "WEBHOOK_DLQ_URL": resources.webhook_dlq_url,
        "EVENT_BUS_NAME": resources.event_bus,
        "WEBHOOK_ALLOW_LOCAL_HTTP": "true",
        # A short schedule for the tests; the production one is the settings' default.
        "WEBHOOK_RETRY_BASE_SECONDS": "0.2",
        "WEBHOOK_RETRY_MAX_DELAY_SECONDS": "1",
        "WEBHOOK_RETRY_WINDOW_SECONDS": "10",
        "WEBHOOK_TIMEOUT_SECONDS": "0.5",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    caches = (handlers._settings, handlers.dispatch_deps, handlers.deliver_deps)
    for cache in caches:
        cache.cache_clear()
    yield Pipeline(clients, resources)
    for cache in caches:
        cache.cache_clear()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


def test_every_transition_whoever_makes_it_reaches_each_webhook_once_signed_and_the_bus(
    pipeline: Pipeline, receiver: WebhookReceiver, moto_aws: Any
) -> None:
    clients, resources = moto_aws
    # EventBridge: a rule that sends everything of the service's source to a queue we can read.
    events_queue = clients.sqs.create_queue(QueueName="bus-tap")["QueueUrl"]
    tap_arn = clients.sqs.get_queue_attributes(QueueUrl=events_queue, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    clients.events.put_rule(
        Name="tap",
        EventBusName=resources.event_bus,
        EventPattern=json.dumps({"source": ["comfy-api-service"]}),
    )
    clients.events.put_targets(
        Rule="tap", EventBusName=resources.event_bus, Targets=[{"Id": "q", "Arn": tap_arn}]
    )
    pipeline.endpoint(
        receiver, "/all", ["job.running", "job.succeeded", "job.failed", "job.canceled", "job.expired"]
    )
    pipeline.endpoint(receiver, "/outcomes")
    job_secret = pipeline.webhooks.ensure_job_secret(OWNER, JobSecret(secret=new_secret(), created_at=0))
    receiver.secrets["/job"] = job_secret.secret

    # The runner succeeds one (progress in between), the API cancels one, the runner expires one, the
    # dead-letter function fails one.
    pipeline.new_job("j-ok", JobWebhook(url=receiver.url("/job"), events=["job.succeeded"]))
    pipeline.succeed("j-ok")
    pipeline.new_job("j-cancel")
    assert pipeline.jobs.cancel_queued("j-cancel", OWNER, int(time.time() * 1000)) is not None
    pipeline.new_job("j-expire")
    claimed = pipeline.jobs.claim(
        "j-expire", "runner-1", int(time.time() * 1000), int(time.time() * 1000) + 60_000
    )
    assert claimed is not None
    assert pipeline.jobs.expire("j-expire", claimed.attempt, int(time.time() * 1000)) is not None
    pipeline.new_job("j-dlq")
    error = JobError(code=ErrorCode.MAX_ATTEMPTS_EXCEEDED, message="given up")
    assert pipeline.jobs.fail_if_active("j-dlq", error, int(time.time() * 1000)) is not None

    outcomes = ["job.succeeded", "job.canceled", "job.expired", "job.failed"]
    pipeline.run_until(lambda: len(receiver.events()) >= 5 + 4 + 1)
    # Every transition is on the bus once, with the event name as its detail-type.
    tapped = clients.sqs.receive_message(QueueUrl=events_queue, MaxNumberOfMessages=10)["Messages"]
    detail_types = sorted(json.loads(m["Body"])["detail-type"] for m in tapped)
    assert detail_types == sorted([*outcomes, "job.running"])
    assert all(json.loads(m["Body"])["detail"]["tenant"] == OWNER for m in tapped)
    # A stream batch seen twice (Lambda retries from its first record) queues only attempts already taken.
    pipeline.stream.open()
    pipeline.run_until(lambda: pipeline.stream.poll_once() == 0 and pipeline.attempts.poll_once(0) == 0)

    assert all(r.verified for r in receiver.received)
    assert sorted(t for _, t in receiver.events("/all")) == sorted([*outcomes, "job.running"])
    assert sorted(t for _, t in receiver.events("/outcomes")) == sorted(outcomes)
    assert [t for _, t in receiver.events("/job")] == ["job.succeeded"]
    assert len(receiver.received) == 10, "each event reached each webhook exactly once"
    # The same event has the same webhook-id at every endpoint; the body is the job as GET shows it.
    ids = {t: i for i, t in receiver.events("/all")}
    assert {t: i for i, t in receiver.events("/outcomes")} == {t: ids[t] for t in outcomes}
    succeeded = next(r.body for r in receiver.received if r.path == "/job")
    assert succeeded["data"]["job_id"] == "j-ok" and succeeded["data"]["status"] == "succeeded"

    deliveries = pipeline.webhooks.list_deliveries("j-ok")
    assert {d.delivery_id: d.status for d in deliveries} == {
        "job.running@wh_all": DeliveryStatus.DELIVERED,
        "job.succeeded@wh_all": DeliveryStatus.DELIVERED,
        "job.succeeded@wh_outcomes": DeliveryStatus.DELIVERED,
        "job.succeeded@job": DeliveryStatus.DELIVERED,
    }
    assert all(len(d.attempts) == 1 and d.attempts[0].status_code == 204 for d in deliveries)


def test_a_receiver_that_is_down_then_errs_then_asks_to_wait_gets_the_event_later(
    pipeline: Pipeline, receiver: WebhookReceiver
) -> None:
    pipeline.endpoint(receiver, "/flaky")
    receiver.stop()
    pipeline.new_job("j-1")
    pipeline.succeed("j-1")

    def attempts() -> int:
        found = pipeline.webhooks.list_deliveries("j-1")
        return len(found[0].attempts) if found else 0

    pipeline.run_until(lambda: attempts() >= 1)
    receiver.answer("/flaky", Reply(500), Reply(503, headers=(("Retry-After", "1"),)))
    receiver.start()
    pipeline.run_until(lambda: len(receiver.events("/flaky")) == 1, seconds=15)

    (delivery,) = pipeline.webhooks.list_deliveries("j-1")
    assert delivery.status is DeliveryStatus.DELIVERED
    codes = [a.status_code for a in delivery.attempts]
    assert codes[0] is None and "ConnectionRefused" in (delivery.attempts[0].error or "")
    assert codes[-3:] == [500, 503, 204]
    # Retry-After: 1 was honoured over the shorter backoff.
    after_503 = delivery.attempts[-1].at - delivery.attempts[-2].at
    assert after_503 >= 1000
    assert delivery.attempts[-2].next_attempt_at is not None


def test_410_disables_the_endpoint_and_a_slow_receiver_is_given_up_into_the_dead_letter_queue(
    pipeline: Pipeline, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from functions.webhooks import handlers

    # A shorter window: the slow receiver is given up sooner.
    monkeypatch.setenv("WEBHOOK_RETRY_WINDOW_SECONDS", "3")
    handlers._settings.cache_clear()
    handlers.deliver_deps.cache_clear()
    gone = pipeline.endpoint(receiver, "/gone")
    slow = pipeline.endpoint(receiver, "/slow")
    receiver.answer("/gone", Reply(410))
    receiver.answer("/slow", *[Reply(200, delay_seconds=1.0)] * 20)
    pipeline.new_job("j-1")
    pipeline.succeed("j-1")

    def settled() -> bool:
        return all(
            d.status is not DeliveryStatus.PENDING for d in pipeline.webhooks.list_deliveries("j-1")
        ) and (len(pipeline.webhooks.list_deliveries("j-1")) == 2)

    pipeline.run_until(settled, seconds=20)
    by_target = {d.target: d for d in pipeline.webhooks.list_deliveries("j-1")}
    assert by_target[gone.endpoint_id].status is DeliveryStatus.GONE
    assert len(by_target[gone.endpoint_id].attempts) == 1
    disabled = pipeline.webhooks.get_endpoint(OWNER, gone.endpoint_id)
    assert disabled is not None and disabled.disabled_at is not None

    timed_out = by_target[slow.endpoint_id]
    assert timed_out.status is DeliveryStatus.FAILED
    assert len(timed_out.attempts) >= 1
    assert all(a.status_code is None and "no answer within" in (a.error or "") for a in timed_out.attempts)
    assert all(a.latency_ms < 1000 for a in timed_out.attempts), "the sender stopped waiting at its timeout"
    counted = pipeline.webhooks.get_endpoint(OWNER, slow.endpoint_id)
    assert counted is not None and counted.failure_count == 1
    (dead,) = pipeline.dead_letters()
    assert dead["job_id"] == "j-1" and dead["target"] == slow.endpoint_id and dead["event"] == "job.succeeded"

    # A disabled endpoint is sent nothing more.
    pipeline.new_job("j-2")
    pipeline.succeed("j-2")
    pipeline.run_until(
        lambda: any(d.target == slow.endpoint_id for d in pipeline.webhooks.list_deliveries("j-2"))
    )
    assert all(d.target != gone.endpoint_id for d in pipeline.webhooks.list_deliveries("j-2"))


def test_a_stream_record_that_is_not_a_job_is_skipped_not_retried_forever() -> None:
    """Retrying a record no code can read would hold back every transition behind it on the shard."""
    good = job_to_item(Job(job_id="j1", owner="o", created_at=1, updated_at=2, status=JobStatus.SUCCEEDED))
    broken = {**good, "job_id": {"S": "j2"}, "outputs": {"S": "[]"}}  # outputs must be a list
    records = [
        {"eventName": "MODIFY", "dynamodb": {"OldImage": {"status": {"S": "running"}}, "NewImage": new}}
        for new in (broken, good)
    ]
    found = transitions(records)
    assert [(t.job.job_id, str(t.event)) for t in found] == [("j1", "job.succeeded")]
