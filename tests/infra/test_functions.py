"""Every Lambda function: its handler, runtime, and an environment that is exactly what its model reads."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic_settings import BaseSettings

from infra.environment import POWERTOOLS_NAMES
from shared.names import METRICS_NAMESPACE, SERVICE_NAME, Env
from shared.settings import (
    ApiSettings,
    DlqSettings,
    ResourceSettings,
    RunnerSettings,
    WebhookSettings,
    WebSocketSettings,
    environment_names,
)
from tests.infra.conftest import Synth

pytestmark = pytest.mark.infra

RESOURCE_NAMES = set(environment_names(ResourceSettings))


def _env(*fields: str) -> set[str]:
    return {field.upper() for field in fields}


# handler -> (settings model, names that must be set in AWS beyond the resource names)
FUNCTIONS: dict[str, tuple[type[BaseSettings], set[str]]] = {
    "functions.api.handler.handler": (
        ApiSettings,
        _env(
            "websocket_url",
            "ws_token_secret_arn",
            "tenants_table_name",
            "webhooks_table_name",
            "webhook_queue_url",
        ),
    ),
    "functions.webhooks.handlers.dispatch_handler": (
        WebhookSettings,
        _env("webhooks_table_name", "webhook_queue_url", "event_bus_name"),
    ),
    "functions.webhooks.handlers.deliver_handler": (
        WebhookSettings,
        _env("webhooks_table_name", "webhook_queue_url", "webhook_dlq_url"),
    ),
    "functions.dlq.handler.handler": (DlqSettings, _env("websocket_management_url")),
    "functions.ws.authorizer.handler": (WebSocketSettings, _env("ws_token_secret_arn")),
    "functions.ws.handler.handler": (WebSocketSettings, set()),
}


def _functions_by_handler(synth: Synth) -> dict[str, dict[str, Any]]:
    functions = {
        props["Handler"]: props
        for props in synth.resources("AWS::Lambda::Function").values()
        if str(props.get("Handler", "")).startswith("functions.")
    }
    return functions


def test_each_entry_point_is_one_function(synth: Synth) -> None:
    assert set(_functions_by_handler(synth)) == set(FUNCTIONS)


@pytest.mark.parametrize("handler", sorted(FUNCTIONS))
def test_function_environment_is_what_its_settings_model_reads(synth: Synth, handler: str) -> None:
    model, required = FUNCTIONS[handler]
    environment = _functions_by_handler(synth)[handler]["Environment"]["Variables"]
    assert set(environment) <= set(environment_names(model)) | POWERTOOLS_NAMES
    assert RESOURCE_NAMES | required <= set(environment)
    assert environment["POWERTOOLS_SERVICE_NAME"] == SERVICE_NAME
    assert environment["POWERTOOLS_METRICS_NAMESPACE"] == METRICS_NAMESPACE
    # A secret's value never travels in an environment; the functions read it from Secrets Manager.
    assert "WS_TOKEN_SECRET" not in environment


@pytest.mark.parametrize("handler", sorted(FUNCTIONS))
def test_function_runs_python_311_on_arm_with_sampled_tracing_and_its_own_role_and_quiet_logs(
    synth: Synth, handler: str
) -> None:
    props = _functions_by_handler(synth)[handler]
    assert props["Runtime"] == "python3.11"
    assert props["Architectures"] == ["arm64"]
    # Traced when the REST API's sampling rule traced the request, never on their own.
    assert props["TracingConfig"] == {"Mode": "PassThrough"}
    assert "LogGroup" in props["LoggingConfig"]
    # No START/END/REPORT lines: about 360 bytes an invocation.
    assert props["LoggingConfig"]["SystemLogLevel"] == "WARN"
    assert props["LoggingConfig"]["LogFormat"] == "JSON"


def test_functions_do_not_share_roles(synth: Synth) -> None:
    roles = [str(props["Role"]) for props in _functions_by_handler(synth).values()]
    assert len(set(roles)) == len(roles)


def test_resource_names_point_at_the_stack_resources(synth: Synth) -> None:
    data = synth.stack.data
    environment = _functions_by_handler(synth)["functions.api.handler.handler"]["Environment"]["Variables"]
    assert environment[Env.JOBS_TABLE] == {"Ref": synth.logical_id(data.jobs_table)}
    assert environment[Env.CONNECTIONS_TABLE] == {"Ref": synth.logical_id(data.connections_table)}
    assert environment[Env.JOBS_QUEUE_URL] == {"Ref": synth.logical_id(data.queue)}
    assert environment[Env.BUCKET] == {"Ref": synth.logical_id(data.bucket)}


def test_the_runner_container_environment_is_what_runner_settings_reads(synth: Synth) -> None:
    (task,) = synth.resources("AWS::ECS::TaskDefinition").values()
    runner = next(c for c in task["ContainerDefinitions"] if c["Name"] == "runner")
    environment = {item["Name"]: item["Value"] for item in runner["Environment"]}
    sdk = {Env.AWS_REGION, "AWS_REGION"}  # the SDK's own; CDK adds AWS_REGION to every container
    assert set(environment) <= set(environment_names(RunnerSettings)) | POWERTOOLS_NAMES | sdk
    required = _env(
        "comfyui_url", "visibility_timeout_seconds", "stop_timeout_seconds", "websocket_management_url"
    )
    assert RESOURCE_NAMES | required <= set(environment)
    config = synth.stack.config
    assert environment["COMFYUI_URL"] == f"http://localhost:{config.comfyui_port}"
    assert environment["VISIBILITY_TIMEOUT_SECONDS"] == str(config.visibility_timeout_seconds)
    # The runner's shutdown budget ends before ECS's stopTimeout kills it.
    assert int(environment["STOP_TIMEOUT_SECONDS"]) < runner["StopTimeout"]


def test_the_dlq_function_consumes_the_dead_letter_queue_reporting_partial_failures(synth: Synth) -> None:
    synth.template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::GetAtt": [synth.logical_id(synth.stack.data.dead_letter_queue), "Arn"]},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "FunctionName": {"Ref": synth.logical_id(synth.stack.dlq_function.function)},
        },
    )


def test_nothing_runs_on_a_schedule_to_resend_jobs(synth: Synth) -> None:
    """The API sends a job's message before it writes the job: there is no lost send to sweep up."""
    assert not [
        rule for rule in synth.resources("AWS::Events::Rule").values() if "ScheduleExpression" in rule
    ]


def test_a_runner_drops_a_jobless_message_only_once_no_put_can_still_come() -> None:
    from gpu_runner.orphans import ORPHAN_AFTER_SECONDS, RECHECK_DELAY_SECONDS
    from infra.stack import API_TIMEOUT

    assert API_TIMEOUT.to_seconds() < RECHECK_DELAY_SECONDS
    assert 10 * API_TIMEOUT.to_seconds() < ORPHAN_AFTER_SECONDS
