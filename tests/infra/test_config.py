"""Context -> configuration: documented defaults, values from the command line, clear refusals."""

from __future__ import annotations

import pytest
from aws_cdk import App

from infra.assembly import BUNDLING_STACKS, build_app, cdk_json_context
from infra.bundling import PROJECT_ROOT
from infra.config import CONTEXT_KEYS, ConfigError, ServiceConfig
from infra.environment import EnvironmentMismatchError, service_environment, setting_env
from shared.names import Env
from shared.settings import ApiSettings, DlqSettings, RunnerSettings

pytestmark = pytest.mark.infra

# The context keys for operating the service in AWS, each with its default in cdk.json.
OPERATIONAL_KEYS = (
    "rootVolumeThroughputMiBps",
    "rootVolumeIops",
    "warmPoolSize",
    "warmPoolState",
    "prePullImage",
    "scheduledMinRunners",
    "corsAllowedOrigins",
    "customDomainName",
    "certificateArn",
    "apiReservedConcurrency",
    "preferWaitMaxSeconds",
    "tableDeletionProtection",
)


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
        ({"rootVolumeThroughputMiBps": 2000}, "rootVolumeThroughputMiBps"),
        ({"rootVolumeThroughputMiBps": 1000, "rootVolumeIops": 3000}, "rootVolumeIops / 4"),
        ({"warmPoolSize": 5}, "warmPoolSize"),
        ({"warmPoolSize": 1, "instanceTypes": "g5.xlarge,g6.xlarge"}, "mixed-instances"),
        ({"warmPoolState": "Frozen"}, "warmPoolState"),
        ({"scheduledMinRunners": '[{"cron": "0 8 * * *", "minRunners": 1}]'}, r"scheduledMinRunners\[0\]"),
        ({"scheduledMinRunners": '[{"cron": "0 8 ? * * *", "minRunners": 9}]'}, "minRunners"),
        (
            {"scheduledMinRunners": '[{"cron": "0 8 ? * * *", "minRunners": 1, "timeZone": "Mars/Base"}]'},
            "timeZone",
        ),
        ({"scheduledMinRunners": '{"cron": "0 8 ? * * *"}'}, "scheduledMinRunners"),
        ({"corsAllowedOrigins": "https://app.example.com/path"}, "corsAllowedOrigins"),
        ({"customDomainName": "api.example.com"}, "give both or neither"),
        (
            {
                "customDomainName": "API_example",
                "certificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/x",
            },
            "customDomainName",
        ),
        (
            {"customDomainName": "api.example.com", "certificateArn": "arn:aws:iam::1:role/x"},
            "certificateArn",
        ),
        ({"apiReservedConcurrency": 100}, "apiReservedConcurrency 100 is below what the API needs"),
        ({"preferWaitMaxSeconds": 20}, "apiReservedConcurrency 400 is below"),
        ({"preferWaitMaxSeconds": 30}, "preferWaitMaxSeconds"),
    ],
)
def test_bad_values_are_refused_naming_the_key(values: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ServiceConfig.from_mapping(values)


def test_the_api_may_wait_longer_when_its_reservation_or_throttle_makes_room() -> None:
    roomy = ServiceConfig.from_mapping(
        {
            "preferWaitMaxSeconds": 20,
            "apiReservedConcurrency": 800,
            "apiThrottle": '{"rateLimit": 30, "burstLimit": 60}',
        }
    )
    assert roomy.api_peak_concurrency == 60 + 30 * 21 <= 800


def test_any_origin_only_when_asked_for() -> None:
    assert ServiceConfig.from_mapping({}).cors_allowed_origins == ()
    assert ServiceConfig.from_mapping({"corsAllowedOrigins": "*"}).cors_allowed_origins == ("*",)


def test_cdk_json_holds_the_defaults_of_the_operational_keys() -> None:
    """cdk.json names the deploy-time knobs with their defaults, and they agree with ServiceConfig's."""
    context = cdk_json_context()
    defaults = ServiceConfig()
    documented = (PROJECT_ROOT / "docs" / "deploy.md").read_text()
    for key in OPERATIONAL_KEYS:
        assert key in context, key
        assert ServiceConfig.from_mapping({key: context[key]}) == defaults, key
    for key in CONTEXT_KEYS:
        assert f"| `{key}` |" in documented, f"{key} is missing from docs/deploy.md's table"


def test_every_context_key_reaches_a_field() -> None:
    fields = set(ServiceConfig.__dataclass_fields__)
    assert {attr for attr, _ in CONTEXT_KEYS.values()} == fields


def test_from_context_reads_the_app_context() -> None:
    app = App(context={"stage": "staging", "maxRunners": 2})
    config = ServiceConfig.from_context(app.node)
    assert (config.stage, config.max_runners) == ("staging", 2)


def test_an_environment_refuses_names_its_model_does_not_read() -> None:
    resources = {name: "x" for name in (Env.JOBS_TABLE, Env.CONNECTIONS_TABLE)}
    resources |= {Env.JOBS_QUEUE_URL: "x", Env.BUCKET: "x"}
    with pytest.raises(EnvironmentMismatchError, match="does not read"):
        service_environment(DlqSettings, {**resources, "WEBSOCKET_URL": "wss://x"}, log_level="INFO")
    with pytest.raises(EnvironmentMismatchError, match="needs"):
        service_environment(DlqSettings, {}, log_level="INFO")
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
