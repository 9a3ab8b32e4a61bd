"""SnapStart as a deploy option: the REST API function restores from a snapshot of a published
version that API Gateway invokes through an alias; by default nothing of it is in the template."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.snapstart import ALIAS_NAME
from tests.infra.conftest import Synth

pytestmark = pytest.mark.infra

API_HANDLER = "functions.api.handler.handler"


def _functions(synth: Synth) -> dict[str, dict[str, Any]]:
    """The service's own functions (not CDK's custom-resource helpers), by handler."""
    return {
        props["Handler"]: props
        for props in synth.resources("AWS::Lambda::Function").values()
        if str(props.get("Handler", "")).startswith("functions.")
    }


def _raw(synth: Synth, resource_type: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in synth.json["Resources"].items() if r["Type"] == resource_type}


def _integration_uris(synth: Synth) -> list[str]:
    return [
        json.dumps(method["Integration"]["Uri"])
        for method in synth.resources("AWS::ApiGateway::Method").values()
    ]


def test_by_default_no_function_takes_a_snapshot_and_api_gateway_invokes_the_function(synth: Synth) -> None:
    functions = _functions(synth)
    assert all("SnapStart" not in props for props in functions.values())
    assert {props["Runtime"] for props in functions.values()} == {"python3.11"}
    assert synth.resources("AWS::Lambda::Version") == {}
    assert synth.resources("AWS::Lambda::Alias") == {}
    api_function = synth.logical_id(synth.stack.api_function.function)
    uris = _integration_uris(synth)
    assert uris and all(api_function in uri and ALIAS_NAME not in uri for uri in uris)


def test_snap_start_puts_the_api_function_on_python_312_with_a_published_version_and_an_alias(
    optional_synth: Synth,
) -> None:
    functions = _functions(optional_synth)
    # One asset for all: its wheels are for one Python, so every function moves to 3.12.
    assert {props["Runtime"] for props in functions.values()} == {"python3.12"}
    assert functions[API_HANDLER]["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    assert [h for h, props in functions.items() if "SnapStart" in props] == [API_HANDLER]

    api_function = optional_synth.logical_id(optional_synth.stack.api_function.function)
    ((version_id, version),) = _raw(optional_synth, "AWS::Lambda::Version").items()
    assert version["Properties"]["FunctionName"] == {"Ref": api_function}
    # A replaced version goes, and its snapshot's caching charge with it.
    assert version["DeletionPolicy"] == "Delete"
    (alias,) = _raw(optional_synth, "AWS::Lambda::Alias").values()
    assert alias["Properties"]["Name"] == ALIAS_NAME
    assert alias["Properties"]["FunctionName"] == {"Ref": api_function}
    assert alias["Properties"]["FunctionVersion"] == {"Fn::GetAtt": [version_id, "Version"]}


def test_with_snap_start_api_gateway_invokes_the_alias_and_may_only_invoke_that(
    optional_synth: Synth,
) -> None:
    (alias_id,) = optional_synth.resources("AWS::Lambda::Alias")
    uris = _integration_uris(optional_synth)
    assert uris and all(alias_id in uri for uri in uris)
    api_function = optional_synth.logical_id(optional_synth.stack.api_function.function)
    # The REST API's permissions: on the alias, or (wrongly) on the function itself.
    rest_permissions = [
        props["FunctionName"]
        for props in optional_synth.resources("AWS::Lambda::Permission").values()
        if props["Principal"] == "apigateway.amazonaws.com"
        and {api_function, alias_id} & set(json.dumps(props["FunctionName"]).split('"'))
    ]
    assert len(rest_permissions) >= len(uris)
    # An unqualified permission would let the gateway call $LATEST, which starts without the snapshot.
    assert all(name == {"Ref": alias_id} for name in rest_permissions)
