"""schemathesis fuzzes the local stack's OpenAPI: no input may give a 5xx or an answer the document does not
describe (status, content type, headers, body)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Stack, start_stack, stop_stack

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    ]
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(tmp_path_factory.mktemp("fuzz"), RUNNERS="1")
    yield running
    stop_stack(running)


@pytest.mark.timeout(300)
def test_the_openapi_holds_under_fuzzing(stack: Stack, tmp_path: Path) -> None:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{stack.rest_url}/v1/openapi.json",
        "--header",
        f"x-api-key: {stack.endpoints['api_keys'][0]}",
        "--checks",
        CHECKS,
        "--max-examples",
        "20",
        "--generation-deterministic",
        "--phases",
        "examples,coverage,fuzzing",
        "--workers",
        "1",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=280, cwd=tmp_path)
    report = result.stdout + result.stderr
    assert "API Operations" in report, report[-3000:]
    assert result.returncode == 0, report[-6000:]
