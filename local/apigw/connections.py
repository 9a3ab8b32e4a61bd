"""Live WebSocket connections and the ``@connections`` management API that reaches them.

Served at ``/<stage>/@connections/{connectionId}`` beside the WebSocket endpoint, so boto3's
``apigatewaymanagementapi`` client works with ``endpoint_url="http://127.0.0.1:P/<stage>"``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import web

from local.apigw.events import WsPeer, new_request_id, now_ms
from local.apigw.gateway import gateway_error

logger = logging.getLogger(__name__)

# The largest message @connections accepts, as API Gateway's WebSocket frame limit.
MAX_POST_BYTES = 128 * 1024

CLOSED_BY_MANAGEMENT_API = (1000, "Connection Closed Normally")


@dataclass(eq=False)
class Connection:
    peer: WsPeer
    ws: web.WebSocketResponse
    last_active_ms: int = field(default_factory=now_ms)
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Set by whoever closes the socket from this side, for the $disconnect event.
    close_status: tuple[int, str] | None = None

    @property
    def connection_id(self) -> str:
        return self.peer.connection_id

    def touch(self) -> None:
        self.last_active_ms = now_ms()

    async def send(self, data: bytes) -> None:
        """Send a frame: text when the data is UTF-8, as clients of our API expect, binary otherwise."""
        async with self.send_lock:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                await self.ws.send_bytes(data)
            else:
                await self.ws.send_str(text)
        self.touch()

    async def close(self, status: tuple[int, str]) -> None:
        if self.close_status is None:
            self.close_status = status
        await self.ws.close(code=status[0], message=status[1].encode())


class ConnectionRegistry:
    """Connections that finished ``$connect`` and have not yet gone: only these can be posted to.

    Touched only from the server's event loop.
    """

    def __init__(self) -> None:
        self._connections: dict[str, Connection] = {}

    def add(self, connection: Connection) -> None:
        self._connections[connection.connection_id] = connection

    def remove(self, connection_id: str) -> None:
        self._connections.pop(connection_id, None)

    def get(self, connection_id: str) -> Connection | None:
        connection = self._connections.get(connection_id)
        if connection is None or connection.ws.closed:
            return None
        return connection

    def ids(self) -> list[str]:
        return list(self._connections)

    def all(self) -> list[Connection]:
        return list(self._connections.values())


def _iso(epoch_ms: int) -> str:
    return (
        datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


@dataclass(frozen=True)
class Refusal:
    """Why a caller may not use the management API, as API Gateway answers it (403)."""

    error_type: str
    message: str


# (method, connection id, the request's Authorization header) -> None to serve it, or why not.
AccessCheck = Callable[[str, str, str], Refusal | None]


def _gone(request_id: str) -> web.Response:
    return gateway_error(410, "The connection is gone", "GoneException", request_id=request_id)


class ManagementApi:
    """``POST``/``GET``/``DELETE /<stage>/@connections/{connectionId}``.

    With an ``access`` check, each call must come from a principal allowed ``execute-api:ManageConnections``
    on it, as IAM authorizes the management API; the signature itself is not recomputed.
    """

    def __init__(self, registry: ConnectionRegistry, stage: str, access: AccessCheck | None = None) -> None:
        self.registry = registry
        self.stage = stage
        self.access = access

    def routes(self) -> list[web.RouteDef]:
        path = f"/{self.stage}/@connections/{{connection_id}}"
        return [
            web.post(path, self._checked(self.post_to_connection)),
            web.get(path, self._checked(self.get_connection), allow_head=False),
            web.delete(path, self._checked(self.delete_connection)),
        ]

    def _checked(
        self, serve: Callable[[web.Request], Awaitable[web.Response]]
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def checked(request: web.Request) -> web.Response:
            if self.access is not None:
                refusal = self.access(
                    request.method,
                    request.match_info["connection_id"],
                    request.headers.get("Authorization", ""),
                )
                if refusal is not None:
                    return gateway_error(403, refusal.message, refusal.error_type)
            return await serve(request)

        return checked

    async def post_to_connection(self, request: web.Request) -> web.Response:
        request_id = new_request_id()
        connection = self.registry.get(request.match_info["connection_id"])
        if connection is None:
            return _gone(request_id)
        data = await request.read()
        if len(data) > MAX_POST_BYTES:
            return gateway_error(413, "Message too long", "PayloadTooLargeException", request_id=request_id)
        try:
            await connection.send(data)
        except (ConnectionError, RuntimeError) as exc:
            logger.info("post to %s failed: %s", connection.connection_id, exc)
            return _gone(request_id)
        return web.Response(status=200, headers={"x-amzn-RequestId": request_id})

    async def get_connection(self, request: web.Request) -> web.Response:
        request_id = new_request_id()
        connection = self.registry.get(request.match_info["connection_id"])
        if connection is None:
            return _gone(request_id)
        identity = {"sourceIp": connection.peer.source_ip}
        if connection.peer.user_agent is not None:
            identity["userAgent"] = connection.peer.user_agent
        body = {
            "connectedAt": _iso(connection.peer.connected_at_ms),
            "identity": identity,
            "lastActiveAt": _iso(connection.last_active_ms),
        }
        return web.Response(
            body=json.dumps(body).encode(),
            content_type="application/json",
            headers={"x-amzn-RequestId": request_id},
        )

    async def delete_connection(self, request: web.Request) -> web.Response:
        request_id = new_request_id()
        connection = self.registry.get(request.match_info["connection_id"])
        if connection is None:
            return _gone(request_id)
        # Gone at once for later posts; the socket closes and $disconnect follows in the background.
        self.registry.remove(connection.connection_id)
        task = asyncio.create_task(connection.close(CLOSED_BY_MANAGEMENT_API))
        _background.add(task)
        task.add_done_callback(_background.discard)
        return web.Response(status=204, headers={"x-amzn-RequestId": request_id})


# Strong references to fire-and-forget tasks, which asyncio would otherwise be free to collect.
_background: set[asyncio.Task[None]] = set()
