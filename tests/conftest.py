"""Fixtures shared by every test group: fake AWS credentials and the project's resources in moto."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The recorded protocol, vendored beside the simulator that reproduces it.
PROTOCOL_DIR = ROOT / "local" / "comfyui_sim" / "protocol"


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may ever reach a real AWS account."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_METRICS_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def load_workflow(name: str) -> dict[str, Any]:
    return dict(json.loads((PROTOCOL_DIR / "workflows" / name).read_text()))


def sampler_workflow(steps: int) -> dict[str, Any]:
    """The demo's text-to-image example; on the simulator it runs ``steps`` times its step delay.

    Not the txt2img template: long-running tests need more steps than the template allows.
    """
    workflow: dict[str, Any] = json.loads((ROOT / "examples" / "txt2img.json").read_text())
    workflow["3"]["inputs"]["steps"] = steps
    # A new seed each time: ComfyUI would otherwise serve a repeat from its cache without sampling.
    workflow["3"]["inputs"]["seed"] = time.time_ns() % 2**32
    return workflow


@pytest.fixture
def simple_workflow() -> dict[str, Any]:
    return load_workflow("simple_invert_save.json")


@pytest.fixture
def moto_aws() -> Iterator[Any]:
    """moto in-process, with every table, queue and bucket created from shared.names."""
    from moto import mock_aws

    from local.aws_resources import create_resources
    from shared.aws.clients import AwsClients

    with mock_aws():
        clients = AwsClients()
        yield clients, create_resources(clients, visibility_timeout_seconds=2, max_receive_count=3)


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    """Debian's Chromium for the browser tests, or a skip that says how to get it."""
    import shutil

    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip(
            "no Chromium installed: `apt-get install chromium` (.ci/run does) to run the browser tests"
        )
    return found
