"""Context -> configuration: documented defaults, values from the command line, clear refusals."""

from __future__ import annotations

import pytest
from aws_cdk import App

from infra.assembly import BUNDLING_STACKS, build_app
from infra.config import CONTEXT_KEYS, ConfigError, ServiceConfig
from infra.environment import EnvironmentMismatchError, service_environment, setting_env
from shared.names import Env
from shared.settings import ApiSettings, RunnerSettings, SweeperSettings

pytestmark = pytest.mark.infra


def test_defaults_are_what_the_docs_promise() -> None:
    config = ServiceConfig.from_mapping({})
    assert config.stage == "prod"
    assert config.instance_types == ("g5.xlarge",)
    assert config.min_runners == 0
    assert config.stop_timeout_seconds == 120
    assert (
        config.visibility_timeout_seconds == RunnerSettings.model_fields["visibility_timeout_seconds"].default
    )
    assert config.max_receive_count == 5
    assert [tier.name for tier in config.tiers] == ["free", "pro"]


def test_command_line_strings_are_parsed() -> None:
    config = ServiceConfig.from_mapping(
        {
            "maxRunners": "8",
            "instanceTypes": "g5.xlarge, g5.2xlarge",
            "retainData": "false",
            "apiThrottle": '{"rateLimit": 5, "burstLimit": 10}',
            "tiers": '{"team": {"rateLimit": 3, "burstLimit": 6, "quota": 900, "quotaPeriod": "week"}}',
        }
    )
    assert config.max_runners == 8
    assert config.instance_types == ("g5.xlarge", "g5.2xlarge")
    assert config.retain_data is False
    assert config.api_throttle.burst_limit == 10
    (tier,) = config.tiers
    assert (tier.name, tier.quota, tier.quota_period) == ("team", 900, "WEEK")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"minRunners": 3, "maxRunners": 2}, "minRunners"),
        ({"stopTimeoutSeconds": 300}, "stopTimeoutSeconds"),
        ({"logRetentionDays": 8}, "logRetentionDays"),
        ({"lambdaArchitecture": "sparc"}, "lambdaArchitecture"),
        ({"maxRunners": "many"}, "maxRunners"),
        ({"noSuchKey": 1}, "unknown"),
    ],
)
def test_bad_values_are_refused_naming_the_key(values: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ServiceConfig.from_mapping(values)


def test_every_context_key_reaches_a_field() -> None:
    fields = set(ServiceConfig.__dataclass_fields__)
    assert {attr for attr, _ in CONTEXT_KEYS.values()} == fields


def test_from_context_reads_the_app_context() -> None:
    app = App(context={"stage": "staging", "maxRunners": 2})
    config = ServiceConfig.from_context(app.node)
    assert (config.stage, config.max_runners) == ("staging", 2)


def test_an_environment_refuses_names_its_model_does_not_read() -> None:
    resources = {name: "x" for name in (Env.JOBS_TABLE, Env.IDEMPOTENCY_TABLE, Env.CONNECTIONS_TABLE)}
    resources |= {Env.JOBS_QUEUE_URL: "x", Env.BUCKET: "x"}
    with pytest.raises(EnvironmentMismatchError, match="does not read"):
        service_environment(SweeperSettings, {**resources, "WEBSOCKET_URL": "wss://x"}, log_level="INFO")
    with pytest.raises(EnvironmentMismatchError, match="needs"):
        service_environment(SweeperSettings, {}, log_level="INFO")
    with pytest.raises(EnvironmentMismatchError, match="no setting"):
        setting_env(ApiSettings, "no_such_setting")
    assert setting_env(ApiSettings, "websocket_url") == "WEBSOCKET_URL"


def test_deploying_without_a_comfyui_image_is_refused_with_how_to_name_it() -> None:
    _, stack = build_app({BUNDLING_STACKS: []}, nag=False)
    errors = [
        entry.data
        for construct in stack.node.find_all()
        for entry in construct.node.metadata
        if entry.type == "aws:cdk:error"
    ]
    assert any("comfyuiImage" in str(message) for message in errors)
