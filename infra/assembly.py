"""Builds the CDK app: the context from cdk.json, the stack, and cdk-nag (AwsSolutions) over all of it.

``app.py`` and the tests both call :func:`build_app`, so what the tests check is what ``cdk deploy`` ships.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks

from infra.bundling import PROJECT_ROOT
from infra.config import ServiceConfig, parse_bool
from infra.stack import ComfyApiStack
from shared.names import DEFAULT_STACK_NAME

CDK_JSON = PROJECT_ROOT / "cdk.json"
# CDK's own context key: the stacks whose assets are bundled ([] bundles none).
BUNDLING_STACKS = "aws:cdk:bundling-stacks"


def cdk_json_context(path: Path = CDK_JSON) -> dict[str, Any]:
    """cdk.json's context (feature flags included), so ``python app.py`` synthesizes as ``cdk synth`` does."""
    return dict(json.loads(path.read_text()).get("context", {}))


def build_app(
    context: Mapping[str, Any] | None = None, *, outdir: str | None = None, nag: bool = True
) -> tuple[App, ComfyApiStack]:
    """The app and its one stack; ``nag=False`` leaves the cdk-nag plugin out (to inspect findings)."""
    app = App(context={**cdk_json_context(), **(context or {})}, outdir=outdir)
    # -c skipBundling=true: synthesize without building the Lambda asset (offline, quick).
    if parse_bool(app.node.try_get_context("skipBundling") or False):
        app.node.set_context(BUNDLING_STACKS, [])
    config = ServiceConfig.from_context(app.node)
    stack_name = str(app.node.try_get_context("stackName") or DEFAULT_STACK_NAME)
    stack = ComfyApiStack(
        app,
        stack_name,
        config=config,
        description="comfy-api-service: ComfyUI as a serverless job API (REST, WebSocket, GPU runners)",
    )
    # cdk-nag 3 is a CDK validation plugin: synthesis stops on any finding not acknowledged in infra/.
    if nag:
        Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return app, stack
