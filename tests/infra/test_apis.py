"""The REST API (API keys, tiers, logs, throttling) and the WebSocket API (routes, authorizer, stage)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.config import DEFAULT_TIERS, ServiceConfig
from shared.names import (
    PUBLIC_REST_PATHS,
    WS_ACTIONS,
    WS_CONNECT_MOCK_TEMPLATES,
    WS_CONNECT_TEMPLATE_SELECTION,
    WS_ROUTE_SELECTION_EXPRESSION,
    WS_TOKEN_QUERY_PARAMETER,
)
from tests.infra.conftest import Synth

pytestmark = pytest.mark.infra


def _resource_paths(synth: Synth) -> dict[str, str]:
    """Logical id of each REST resource -> its full path."""
    resources = synth.resources("AWS::ApiGateway::Resource")

    def path(logical_id: str) -> str:
        parent = resources[logical_id]["ParentId"]
        prefix = path(parent["Ref"]) if "Ref" in parent else ""
        return f"{prefix}/{resources[logical_id]['PathPart']}"

    return {logical_id: path(logical_id) for logical_id in resources}


def _method_path(method: dict[str, Any], paths: dict[str, str]) -> str:
    resource = method["ResourceId"]
    return paths[resource["Ref"]] if "Ref" in resource else "/"


def test_every_rest_method_requires_an_api_key_but_the_docs_and_proxies_to_the_api_function(
    synth: Synth,
) -> None:
    methods = synth.resources("AWS::ApiGateway::Method")
    paths = _resource_paths(synth)
    api_function = synth.logical_id(synth.stack.api_function.function)
    keyed = {_method_path(m, paths): m for m in methods.values() if m["ApiKeyRequired"] is True}
    public = {_method_path(m, paths): m for m in methods.values() if m["ApiKeyRequired"] is not True}
    assert set(keyed) == {"/", "/{proxy+}"}
    assert all(m["HttpMethod"] == "ANY" for m in keyed.values())
    # The API's description and the docs page open in a browser, which cannot send a key.
    assert set(public) == set(PUBLIC_REST_PATHS) == {"/v1/openapi.json", "/v1/docs", "/v1/docs/{asset}"}
    assert all(m["HttpMethod"] == "GET" for m in public.values())
    for method in methods.values():
        assert method["Integration"]["Type"] == "AWS_PROXY"
        assert api_function in json.dumps(method["Integration"]["Uri"])


def test_the_stage_logs_access_as_json_throttles_and_traces(synth: Synth) -> None:
    config = ServiceConfig()
    (stage,) = synth.resources("AWS::ApiGateway::Stage").values()
    assert stage["StageName"] == config.stage
    assert stage["TracingEnabled"] is True
    log_format = json.loads(stage["AccessLogSetting"]["Format"])
    assert {"requestId", "apiKeyId", "status"} <= set(log_format)
    (settings,) = stage["MethodSettings"]
    assert settings["ThrottlingRateLimit"] == config.api_throttle.rate_limit
    assert settings["ThrottlingBurstLimit"] == config.api_throttle.burst_limit
    assert settings["LoggingLevel"] == "ERROR"
    assert settings["DataTraceEnabled"] is False


def test_usage_plans_are_the_tiers_with_rate_burst_and_quota(synth: Synth) -> None:
    plans = synth.resources("AWS::ApiGateway::UsagePlan").values()
    assert len(plans) == len(DEFAULT_TIERS)
    by_description = {plan["Description"]: plan for plan in plans}
    for name, tier in DEFAULT_TIERS.items():
        plan = by_description[f"API keys in the {name} tier"]
        assert plan["Throttle"] == {"RateLimit": tier["rateLimit"], "BurstLimit": tier["burstLimit"]}
        assert plan["Quota"] == {"Limit": tier["quota"], "Period": tier["quotaPeriod"]}
        (api_stage,) = plan["ApiStages"]
        assert api_stage["Stage"] == {"Ref": synth.logical_id(synth.stack.rest.stage)}
        # How the tenants command finds a tier's plan: <stack name>-<tier>.
        assert plan["UsagePlanName"] == {"Fn::Join": ["", [{"Ref": "AWS::StackName"}, f"-{name}"]]}


def test_the_websocket_api_has_its_routes_and_authorizes_connect(synth: Synth) -> None:
    synth.template.has_resource_properties(
        "AWS::ApiGatewayV2::Api",
        {"ProtocolType": "WEBSOCKET", "RouteSelectionExpression": WS_ROUTE_SELECTION_EXPRESSION},
    )
    routes = {route["RouteKey"]: route for route in synth.resources("AWS::ApiGatewayV2::Route").values()}
    # No $disconnect route: nothing is stored per connection, so nothing needs cleaning when one closes.
    assert set(routes) == {"$connect", "$default", *WS_ACTIONS}
    ((authorizer_id, authorizer),) = synth.resources("AWS::ApiGatewayV2::Authorizer").items()
    assert synth.logical_id(synth.stack.ws_authorizer.function) in json.dumps(authorizer["AuthorizerUri"])
    assert routes["$connect"]["AuthorizationType"] == "CUSTOM"
    assert routes["$connect"]["AuthorizerId"] == {"Ref": authorizer_id}
    # The authorizer alone lets a connection in: $connect's integration is a mock, no function runs.
    integrations = synth.resources("AWS::ApiGatewayV2::Integration")
    connect = integrations[routes["$connect"]["Target"]["Fn::Join"][1][1]["Ref"]]
    assert connect["IntegrationType"] == "MOCK"
    assert connect["RequestTemplates"] == WS_CONNECT_MOCK_TEMPLATES
    assert connect["TemplateSelectionExpression"] == WS_CONNECT_TEMPLATE_SELECTION
    lambdas = [i for i in integrations.values() if i["IntegrationType"] == "AWS_PROXY"]
    assert len(lambdas) == 1, "one function behind the client actions and $default"
    synth.template.has_resource_properties(
        "AWS::ApiGatewayV2::Authorizer",
        {
            "AuthorizerType": "REQUEST",
            "IdentitySource": [f"route.request.querystring.{WS_TOKEN_QUERY_PARAMETER}"],
        },
    )


def test_the_websocket_stage_throttles_and_logs(synth: Synth) -> None:
    config = ServiceConfig()
    (stage,) = synth.resources("AWS::ApiGatewayV2::Stage").values()
    assert stage["StageName"] == config.stage
    assert stage["AutoDeploy"] is True
    assert stage["DefaultRouteSettings"]["ThrottlingRateLimit"] == config.websocket_throttle.rate_limit
    assert stage["DefaultRouteSettings"]["ThrottlingBurstLimit"] == config.websocket_throttle.burst_limit
    assert "connectionId" in json.loads(stage["AccessLogSettings"]["Format"])


def test_both_stages_wait_for_the_account_logging_role(synth: Synth) -> None:
    (account_id,) = synth.resources("AWS::ApiGateway::Account")
    for resource_type in ("AWS::ApiGateway::Stage", "AWS::ApiGatewayV2::Stage"):
        stages = [r for r in synth.json["Resources"].values() if r["Type"] == resource_type]
        assert all(account_id in stage.get("DependsOn", []) for stage in stages)


def test_the_outputs_give_the_urls_and_the_usage_plans(synth: Synth) -> None:
    outputs = synth.json["Outputs"]
    assert {"RestApiUrl", "WebSocketUrl", "WebSocketManagementUrl", "RestApiId"} <= set(outputs)
    assert {f"UsagePlan{name.capitalize()}" for name in DEFAULT_TIERS} <= set(outputs)
    assert "/v1/" in json.dumps(outputs["RestApiUrl"]["Value"])
    assert "wss://" in json.dumps(outputs["WebSocketUrl"]["Value"])
    assert "https://" in json.dumps(outputs["WebSocketManagementUrl"]["Value"])


def test_one_sampling_rule_traces_a_fixed_share_of_the_stage_with_no_reservoir(synth: Synth) -> None:
    (rule,) = synth.resources("AWS::XRay::SamplingRule").values()
    spec = rule["SamplingRule"]
    assert spec["FixedRate"] == ServiceConfig().xray_sampling_rate == 0.01
    # A reservoir would trace every request at low traffic (1 a second is a million jobs a month).
    assert spec["ReservoirSize"] == 0
    assert spec["ServiceType"] == "AWS::ApiGateway::Stage"
    api = synth.logical_id(synth.stack.rest.api)
    assert api in json.dumps(spec["ResourceARN"]) and ServiceConfig().stage in json.dumps(spec["ResourceARN"])
