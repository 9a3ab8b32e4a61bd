"""Posting frames to WebSocket clients through API Gateway's @connections management API."""

from __future__ import annotations

import json
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

# A post that hangs must not hold up a job: short timeouts and a single retry.
_CONFIG = Config(connect_timeout=2, read_timeout=3, retries={"mode": "standard", "max_attempts": 2})


class ConnectionPoster:
    def __init__(self, endpoint_url: str, session: boto3.session.Session | None = None) -> None:
        session = session or boto3.session.Session()
        self._client = session.client("apigatewaymanagementapi", endpoint_url=endpoint_url, config=_CONFIG)

    def post(self, connection_id: str, frame: dict[str, Any]) -> bool:
        """Sends one JSON frame; False when the connection is gone (410), so its items can be removed."""
        data = json.dumps(frame, separators=(",", ":"), default=str).encode()
        try:
            self._client.post_to_connection(ConnectionId=connection_id, Data=data)
        except self._client.exceptions.GoneException:
            return False
        except (ClientError, BotoCoreError):
            # Anything else (throttling, a timeout) loses this frame only; the next one may pass.
            return True
        return True
