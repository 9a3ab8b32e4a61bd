"""The conformance suite's stack: the whole local stack, driving the ComfyUI under test.

``make conformance COMFYUI_URL=http://host:port`` points it at a real ComfyUI (CONFORMANCE_COMFYUI_URL
here); without one it drives the simulator, as ``make test`` does.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import Stack, start_stack, stop_stack


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "conformance" in str(item.fspath):
            item.add_marker(pytest.mark.conformance)


def comfyui_under_test() -> str:
    return os.environ.get("CONFORMANCE_COMFYUI_URL", "").strip()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {
        "RUNNERS": "1",
        # A heartbeat every second: a cancel reaches a running prompt within about a second.
        "VISIBILITY_TIMEOUT_SECONDS": "3",
    }
    if url := comfyui_under_test():
        env["COMFYUI_URL"] = url
    else:
        # The simulator's nodes take as long as small real ones, so a cancel can land mid-run.
        env["SIM_NODE_DELAY"] = "0.2"
    running = start_stack(tmp_path_factory.mktemp("conformance"), **env)
    yield running
    stop_stack(running)
