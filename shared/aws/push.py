"""Posting frames to WebSocket clients through API Gateway's @connections management API."""

from __future__ import annotations

import http.client
import json
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from shared.aws.clients import default_session

# A post that hangs must not hold up a job: short timeouts and a single retry.
_CONFIG = Config(connect_timeout=2, read_timeout=3, retries={"mode": "standard", "max_attempts": 2})
_TIMEOUT_SECONDS = 3.0

_STALE_CONNECTION = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
# The deadline of the post the current thread is making, read right before its bytes are written.
_deadline = threading.local()


class TooLate(Exception):
    """The sender stopped being entitled to send the frame before its request left."""


class _DeadlineChecked(http.client.HTTPConnection):
    def send(self, data: Any) -> None:
        if self.sock is None:
            self.connect()
        # The last moment before the request is on the wire: a process frozen (SIGSTOP, a paused VM)
        # anywhere before this line, however long, sends nothing once it wakes past its deadline.
        deadline_ms = getattr(_deadline, "ms", None)
        if deadline_ms is not None and time.time() * 1000 >= deadline_ms:
            raise TooLate(f"{time.time() * 1000 - deadline_ms:.0f} ms past the sender's deadline")
        super().send(data)


class _DeadlineCheckedHttps(_DeadlineChecked, http.client.HTTPSConnection):
    pass


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data


class ConnectionPoster:
    def __init__(self, endpoint_url: str, session: boto3.session.Session | None = None) -> None:
        session = session or default_session()
        self._client = session.client("apigatewaymanagementapi", endpoint_url=endpoint_url, config=_CONFIG)
        self._client.meta.events.register("before-send.apigatewaymanagementapi", self._send_by_deadline)
        self._connections = threading.local()

    def post(self, connection_id: str, frame: dict[str, Any], send_before_ms: int | None = None) -> bool:
        """Sends one JSON frame; False when the connection is gone (410), so its items can be removed.
        With ``send_before_ms`` (wall clock), a request that would leave later is not sent at all."""
        data = json.dumps(frame, separators=(",", ":"), default=str).encode()
        _deadline.ms = send_before_ms
        try:
            self._client.post_to_connection(ConnectionId=connection_id, Data=data)
        except self._client.exceptions.GoneException:
            return False
        except (ClientError, BotoCoreError, TooLate, OSError, http.client.HTTPException):
            # Anything else (throttling, a timeout, too late) loses this frame only.
            return True
        finally:
            _deadline.ms = None
        return True

    def _send_by_deadline(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        """Sends a deadline-bound post over a connection that checks the clock as it writes; botocore
        sends every other request itself (returning None lets it)."""
        if getattr(_deadline, "ms", None) is None:
            return None
        url = urlsplit(request.url)
        path = url.path + (f"?{url.query}" if url.query else "")
        for retry in (True, False):
            connection = self._connection(url.scheme, url.netloc)
            try:
                connection.request(request.method, path, body=request.body, headers=dict(request.headers))
                response = connection.getresponse()
                body = response.read()
            except _STALE_CONNECTION:
                # A kept-alive connection the server had closed: once more on a fresh one.
                connection.close()
                if retry:
                    continue
                raise
            except BaseException:
                connection.close()
                raise
            return AWSResponse(request.url, response.status, dict(response.getheaders()), _Body(body))
        return None

    def _connection(self, scheme: str, netloc: str) -> _DeadlineChecked:
        """One kept-alive connection per thread and host, as botocore's own pool would keep."""
        cache: dict[tuple[str, str], _DeadlineChecked] = self._connections.__dict__.setdefault("by_host", {})
        connection = cache.get((scheme, netloc))
        if connection is None:
            kind = _DeadlineCheckedHttps if scheme == "https" else _DeadlineChecked
            connection = cache[(scheme, netloc)] = kind(netloc, timeout=_TIMEOUT_SECONDS)
        return connection
