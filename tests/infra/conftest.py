"""One synthesis of the whole app, shared by every infra test (CDK synth is the slow part)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, CfnResource, Stack
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

from infra.assembly import BUNDLING_STACKS, build_app
from infra.stack import ComfyApiStack

COMFYUI_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/comfyui:test"
CUSTOM_DOMAIN = "api.example.com"
CERTIFICATE_ARN = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
APP_ORIGIN = "https://app.example.com"
OFFICE_HOURS = [
    {"cron": "0 8 ? * MON-FRI *", "minRunners": 1, "timeZone": "Europe/Paris"},
    {"cron": "0 19 ? * MON-FRI *", "minRunners": 0, "timeZone": "Europe/Paris"},
]
# Bundling skipped: synthesis stays offline and quick; the asset is hashed from the source instead.
# Every option that can be on together with one instance type is on: the cold-start helpers, a custom
# domain and a browser origin. The optional synthesis below has the rest, and the defaults for those.
TEST_CONTEXT: dict[str, Any] = {
    BUNDLING_STACKS: [],
    "comfyuiImage": COMFYUI_IMAGE,
    "warmPoolSize": 1,
    "prePullImage": True,
    "scheduledMinRunners": OFFICE_HOURS,
    "customDomainName": CUSTOM_DOMAIN,
    "certificateArn": CERTIFICATE_ARN,
    "corsAllowedOrigins": APP_ORIGIN,
}
# A web ACL, an alarm topic, several instance types, an existing account role, a public image, SnapStart;
# the cold-start helpers, the custom domain and CORS at their defaults.
OPTIONAL_CONTEXT: dict[str, Any] = {
    BUNDLING_STACKS: [],
    "comfyuiImage": "ghcr.io/example/comfyui:1.0",
    "webAclArn": "arn:aws:wafv2:us-east-1:123456789012:regional/webacl/comfy/abc",
    "alarmTopicArn": "arn:aws:sns:us-east-1:123456789012:ops",
    "instanceTypes": "g5.xlarge,g6.xlarge",
    "createApiGatewayAccountRole": "false",
    "snapStart": "true",
}


@dataclass
class Synth:
    app: App
    stack: ComfyApiStack
    template: Template
    json: dict[str, Any]
    seconds: float
    outdir: Path

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        """Logical id -> Properties of every resource of one type."""
        return {
            logical_id: resource.get("Properties", {})
            for logical_id, resource in self.json["Resources"].items()
            if resource["Type"] == resource_type
        }

    def logical_id(self, construct: IConstruct) -> str:
        resource = construct if isinstance(construct, CfnResource) else construct.node.default_child
        assert isinstance(resource, CfnResource), construct.node.path
        return Stack.of(construct).get_logical_id(resource)


def synthesize(context: dict[str, Any], outdir: str) -> Synth:
    """Synthesizes with cdk-nag registered, as ``cdk synth`` does; a finding fails with a readable list."""
    start = time.perf_counter()
    app, stack = build_app(context, outdir=outdir)
    try:
        assembly = app.synth()
    except RuntimeError as error:
        report = AwsSolutionsChecks().validate_scope(app)
        findings = [
            f"{violation.rule_name} at {resource.construct_path}"
            for violation in report.violations
            for resource in violation.violating_resources
        ]
        pytest.fail(f"synthesis failed: {error}\nunacknowledged cdk-nag findings:\n" + "\n".join(findings))
    template_json = assembly.get_stack_artifact(stack.artifact_id).template
    return Synth(
        app,
        stack,
        Template.from_json(template_json),
        template_json,
        time.perf_counter() - start,
        Path(assembly.directory),
    )


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    yield synthesize(TEST_CONTEXT, str(tmp_path_factory.mktemp("cdk.out")))


@pytest.fixture(scope="session")
def optional_synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    """The second and last synthesis: the options the first one leaves off."""
    yield synthesize(OPTIONAL_CONTEXT, str(tmp_path_factory.mktemp("cdk.out.optional")))
