"""``python -m local.apigw`` serves handlers named on its command line from a process of its own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
import websocket

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

ROOT = Path(__file__).resolve().parents[2]


def echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    identity = event["requestContext"]["identity"]
    return {"statusCode": 200, "body": json.dumps({"path": event["path"], "owner": identity["apiKeyId"]})}


def connected(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"statusCode": 200}


def test_the_command_line_serves_both_apis() -> None:
    module = __name__
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "local.apigw",
            "--rest",
            f"{module}:echo",
            "--api-key",
            "secret=key-1",
            "--ws-route",
            f"$connect={module}:connected",
            "--log-level",
            "WARNING",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        urls = json.loads(process.stdout.readline())
        answer = requests.get(f"{urls['rest_url']}/v1/health", headers={"x-api-key": "secret"}, timeout=10)
        ws = websocket.create_connection(urls["websocket_url"], timeout=10)
        ws.close()
    finally:
        process.terminate()
        assert process.wait(timeout=20) == 0

    assert answer.json() == {"path": "/v1/health", "owner": "key-1"}
    assert urls["management_url"] == urls["websocket_url"].replace("ws://", "http://")
