"""Alarms on what goes wrong, and a dashboard of the job metrics the runtime emits."""

from __future__ import annotations

import json

import pytest

from infra.config import ServiceConfig
from shared.names import METRICS_NAMESPACE, JobMetric
from tests.infra.conftest import Synth

pytestmark = pytest.mark.infra


def _alarms(synth: Synth) -> list[dict]:
    return list(synth.resources("AWS::CloudWatch::Alarm").values())


def _alarm_on(synth: Synth, metric_name: str, namespace: str) -> list[dict]:
    return [
        a for a in _alarms(synth) if a.get("MetricName") == metric_name and a.get("Namespace") == namespace
    ]


def test_an_alarm_fires_when_a_job_waits_too_long(synth: Synth) -> None:
    (alarm,) = _alarm_on(synth, "ApproximateAgeOfOldestMessage", "AWS/SQS")
    assert alarm["Threshold"] == ServiceConfig().queue_age_alarm_seconds


def test_every_function_has_an_errors_alarm(synth: Synth) -> None:
    alarmed = {json.dumps(a["Dimensions"]) for a in _alarm_on(synth, "Errors", "AWS/Lambda")}
    functions = [
        synth.stack.api_function,
        synth.stack.dlq_function,
        synth.stack.ws_authorizer,
        synth.stack.ws_routes,
    ]
    for function in functions:
        dimensions = [{"Name": "FunctionName", "Value": {"Ref": synth.logical_id(function.function)}}]
        assert json.dumps(dimensions) in alarmed


def test_an_alarm_fires_on_api_5xx(synth: Synth) -> None:
    (alarm,) = _alarm_on(synth, "5XXError", "AWS/ApiGateway")
    assert alarm["Threshold"] == 1


def test_the_dashboard_plots_every_job_metric_and_the_queue(synth: Synth) -> None:
    (dashboard,) = synth.resources("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["DashboardBody"])
    metric_names = [value for name, value in vars(JobMetric).items() if not name.startswith("_")]
    assert len(metric_names) == 13
    for name in metric_names:
        assert name in body
    assert METRICS_NAMESPACE in body
    assert "ApproximateNumberOfMessagesVisible" in body
    assert "RunningTaskCount" in body
