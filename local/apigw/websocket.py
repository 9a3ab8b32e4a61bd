"""The WebSocket half: handshakes, frames and closes in; authorizer, ``$connect``, route and
``$disconnect`` events out to Lambda handlers. ``$connect`` may have a mock integration instead (no
function runs: the request template's status lets the connection in or not), and either of ``$connect``
and ``$disconnect`` may be absent, as in API Gateway.

The API is served at ``ws://127.0.0.1:P/<stage>`` and its management API at ``http://127.0.0.1:P/<stage>``
(see connections.py). What a route handler returns is not sent to the client (no route responses are
configured): the service answers through ``@connections`` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import replace
from http import HTTPStatus
from typing import Any

from aiohttp import WSMsgType, web

from local.apigw.connections import AccessCheck, Connection, ConnectionRegistry, ManagementApi
from local.apigw.events import (
    ApiInfo,
    WsPeer,
    connect_arn,
    new_gateway_id,
    now_ms,
    ws_authorizer_event,
    ws_connect_event,
    ws_disconnect_event,
    ws_message_event,
)
from local.apigw.gateway import gateway_error, incoming_headers, missing_authentication_token, source_ip
from local.apigw.invoke import (
    Handler,
    InvocationError,
    InvocationTimeout,
    LambdaFunction,
    as_function,
    invoke,
    lambda_executor,
)
from local.apigw.mock import MockIntegration
from local.apigw.policy import RouteSelector, Verdict, evaluate_authorizer_response

logger = logging.getLogger(__name__)

# API Gateway's limit on a WebSocket message; a bigger one closes the connection with 1009.
MAX_MESSAGE_BYTES = 128 * 1024

_REASONS = {
    1000: "Connection Closed Normally",
    1001: "Going away",
    1005: "Client-side close frame status not set",
    1006: "Connection was closed abnormally",
    1009: "Message too big",
}
_GOING_AWAY = (1001, _REASONS[1001])

Pairs = list[tuple[str, str]]


class WebSocketApiEmulator:
    """A WebSocket API with Lambda proxy integrations.

    ``routes`` maps route keys (``$connect``, ``$disconnect``, ``$default``, ``subscribe``...) to handlers;
    ``$connect`` may map to a ``MockIntegration`` instead;
    ``authorizer``, when given, is the REQUEST authorizer on ``$connect``; ``identity_sources`` such as
    ``route.request.querystring.token`` are checked before it is called, as API Gateway does;
    ``management_access``, when given, decides who may call the ``@connections`` API.
    """

    def __init__(
        self,
        routes: Mapping[str, Handler | LambdaFunction | MockIntegration],
        *,
        authorizer: Handler | LambdaFunction | None = None,
        route_selection_expression: str = "$request.body.action",
        identity_sources: Sequence[str] = (),
        api: ApiInfo | None = None,
        integration_timeout_s: float = 29.0,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        management_access: AccessCheck | None = None,
    ) -> None:
        self.management_access = management_access
        connect = routes.get("$connect")
        self.connect_mock = connect if isinstance(connect, MockIntegration) else None
        for key, target in routes.items():
            if isinstance(target, MockIntegration) and key != "$connect":
                raise ValueError(f"a mock integration is played on $connect only, not on {key!r}")
        self.routes = {
            key: as_function(h, _function_name(key))
            for key, h in routes.items()
            if not isinstance(h, MockIntegration)
        }
        self.authorizer = as_function(authorizer, "ws-authorizer") if authorizer is not None else None
        self.selector = RouteSelector(route_selection_expression)
        self.identity_sources = tuple(identity_sources)
        for source in self.identity_sources:
            _identity_value(source, [], [])  # fail early on a source we cannot read
        self.api = api or ApiInfo(api_id="local0wsap")
        self.integration_timeout_s = integration_timeout_s
        self.max_message_bytes = max_message_bytes
        self.registry = ConnectionRegistry()
        self._message_keys = {k for k in self.routes if k not in ("$connect", "$disconnect")}
        self._executor: Executor | None = None

    def app(self, executor: Executor | None = None) -> web.Application:
        """An aiohttp application serving the API and its ``@connections`` management API."""
        app = web.Application()
        stage = self.api.stage
        app.router.add_get(f"/{stage}", self._handshake, allow_head=False)
        app.router.add_get(f"/{stage}/", self._handshake, allow_head=False)
        app.router.add_routes(ManagementApi(self.registry, stage, self.management_access).routes())
        app.router.add_route("*", "/{tail:.*}", _no_such_resource)
        app.on_shutdown.append(self._close_all)
        if executor is not None:
            self._executor = executor
        else:
            app.cleanup_ctx.append(self._own_executor)
        return app

    def connection_ids(self) -> list[str]:
        return self.registry.ids()

    async def _own_executor(self, _app: web.Application) -> AsyncIterator[None]:
        pool = lambda_executor(16, "apigw-ws")
        self._executor = pool
        yield
        pool.shutdown(wait=False, cancel_futures=True)

    async def _call(self, function: LambdaFunction, event: dict[str, Any]) -> Any:
        assert self._executor is not None, "the application has not started"
        return await invoke(
            function, event, api=self.api, executor=self._executor, timeout_s=self.integration_timeout_s
        )

    async def _handshake(self, request: web.Request) -> web.StreamResponse:
        request_id = new_gateway_id()
        if not web.WebSocketResponse().can_prepare(request).ok:
            return gateway_error(426, "Upgrade Required", request_id=request_id)
        headers = incoming_headers(request)
        query = list(request.query.items())
        peer = WsPeer(
            connection_id=new_gateway_id(),
            connected_at_ms=now_ms(),
            source_ip=source_ip(request),
            user_agent=request.headers.get("User-Agent"),
            domain_name=request.host,
        )
        for source in self.identity_sources:
            if not _identity_value(source, headers, query):
                return gateway_error(401, "Unauthorized", "UnauthorizedException", request_id=request_id)

        if self.authorizer is not None:
            outcome = await self._authorize(self.authorizer, peer, headers, query, request_id)
            if isinstance(outcome, web.Response):
                return outcome
            peer = replace(peer, authorizer=outcome)

        protocols: tuple[str, ...] = ()
        connect = self.routes.get("$connect")
        if self.connect_mock is not None:
            refusal = _mock_refusal(self.connect_mock, request_id)
            if refusal is not None:
                return refusal
        elif connect is not None:
            event = ws_connect_event(
                self.api, peer, headers, query, request_id=request_id, epoch_ms=peer.connected_at_ms
            )
            try:
                result = await self._call(connect, event)
            except (InvocationError, InvocationTimeout):
                return gateway_error(502, "Internal server error", request_id=request_id)
            status = _status_code(result)
            if status is None or not 200 <= status < 300:
                refused = status if status is not None and 300 <= status <= 599 else 502
                return gateway_error(refused, _phrase(refused), request_id=request_id)
            protocols = _subprotocol(result)

        ws = web.WebSocketResponse(max_msg_size=self.max_message_bytes, protocols=protocols)
        await ws.prepare(request)
        connection = Connection(peer, ws)
        self.registry.add(connection)
        logger.info("connected %s", peer.connection_id)
        queue: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        worker = asyncio.create_task(self._deliver(connection, queue))
        try:
            status_and_reason = await self._read(connection, queue)
        finally:
            self.registry.remove(peer.connection_id)
            queue.put_nowait(None)
        # Messages already received still reach their routes, then $disconnect comes last.
        await worker
        await self._disconnect(connection, status_and_reason)
        return ws

    async def _authorize(
        self,
        authorizer: LambdaFunction,
        peer: WsPeer,
        headers: Pairs,
        query: Pairs,
        request_id: str,
    ) -> dict[str, Any] | web.Response:
        event = ws_authorizer_event(
            self.api, peer, headers, query, request_id=request_id, epoch_ms=peer.connected_at_ms
        )
        started = time.monotonic()
        try:
            result = await self._call(authorizer, event)
        except InvocationError as exc:
            if str(exc) == "Unauthorized":
                return gateway_error(401, "Unauthorized", "UnauthorizedException", request_id=request_id)
            return gateway_error(500, "Internal server error", "AuthorizerFailure", request_id=request_id)
        except InvocationTimeout:
            return gateway_error(500, "Internal server error", "AuthorizerFailure", request_id=request_id)
        latency_ms = int((time.monotonic() - started) * 1000)
        decision = evaluate_authorizer_response(
            result, connect_arn(self.api), integration_latency_ms=latency_ms
        )
        if decision.verdict is Verdict.INVALID:
            logger.error("authorizer %s: unusable response: %s", authorizer.name, decision.detail)
            return gateway_error(
                500, "Internal server error", "AuthorizerConfigurationException", request_id=request_id
            )
        if decision.verdict is Verdict.DENY:
            return gateway_error(
                403,
                "User is not authorized to access this resource with an explicit deny",
                "AccessDeniedException",
                request_id=request_id,
            )
        return decision.context

    async def _read(
        self, connection: Connection, queue: asyncio.Queue[str | bytes | None]
    ) -> tuple[int, str]:
        """Queue each data frame until the connection ends; return the close status for ``$disconnect``."""
        ws = connection.ws
        while True:
            msg = await ws.receive()
            if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                connection.touch()
                queue.put_nowait(msg.data)
                continue
            if connection.close_status is not None:
                return connection.close_status
            if msg.type is WSMsgType.CLOSE:
                code = int(msg.data) or 1005
                return code, str(msg.extra or "") or _REASONS.get(code, "")
            if msg.type is WSMsgType.ERROR:
                code = getattr(msg.data, "code", 1006)
                return code, _REASONS.get(code, str(msg.data))
            if msg.type in (WSMsgType.CLOSING, WSMsgType.CLOSED):
                return 1006, _REASONS[1006]

    async def _deliver(self, connection: Connection, queue: asyncio.Queue[str | bytes | None]) -> None:
        # One worker per connection: its messages reach their handlers one at a time, in order.
        while (data := await queue.get()) is not None:
            try:
                await self._route(connection, data)
            except Exception:
                logger.exception("routing a message from %s failed", connection.connection_id)

    async def _route(self, connection: Connection, data: str | bytes) -> None:
        request_id = new_gateway_id()
        route_key = self.selector.route_key(data, self._message_keys)
        if route_key is None:
            await self._tell(connection, "Forbidden", request_id)
            return
        event = ws_message_event(
            self.api, connection.peer, route_key=route_key, data=data, request_id=request_id
        )
        try:
            await self._call(self.routes[route_key], event)
        except (InvocationError, InvocationTimeout):
            await self._tell(connection, "Internal server error", request_id)

    async def _tell(self, connection: Connection, message: str, request_id: str) -> None:
        """API Gateway's own error frame to the client."""
        frame = {"message": message, "connectionId": connection.connection_id, "requestId": request_id}
        with contextlib.suppress(ConnectionError, RuntimeError):
            await connection.send(json.dumps(frame).encode())

    async def _disconnect(self, connection: Connection, status: tuple[int, str]) -> None:
        logger.info("disconnected %s (%d %s)", connection.connection_id, *status)
        function = self.routes.get("$disconnect")
        if function is None:
            return
        event = ws_disconnect_event(self.api, connection.peer, status_code=status[0], reason=status[1])
        # A failure is already logged, and there is nobody left to tell.
        with contextlib.suppress(InvocationError, InvocationTimeout):
            await self._call(function, event)

    async def _close_all(self, _app: web.Application) -> None:
        connections = self.registry.all()
        await asyncio.gather(*(c.close(_GOING_AWAY) for c in connections), return_exceptions=True)


async def _no_such_resource(_request: web.Request) -> web.Response:
    return missing_authentication_token()


def _mock_refusal(mock: MockIntegration, request_id: str) -> web.Response | None:
    """None when the mock lets the connection in; else the handshake's error answer."""
    status = mock.status()
    if status is None:
        # API Gateway: "Execution failed due to configuration error: statusCode should be an integer
        # which defined in request template".
        logger.error("$connect mock integration: the request template gives no integer statusCode")
        return gateway_error(500, "Internal server error", request_id=request_id)
    if not 200 <= status < 300:
        refused = status if 300 <= status <= 599 else 500
        return gateway_error(refused, _phrase(refused), request_id=request_id)
    return None


def _function_name(route_key: str) -> str:
    return "ws-" + (route_key.lstrip("$") or "route")


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Connection refused"


def _status_code(result: Any) -> int | None:
    status = result.get("statusCode") if isinstance(result, dict) else None
    if isinstance(status, str) and status.isdigit():
        return int(status)
    return status if isinstance(status, int) and not isinstance(status, bool) else None


def _subprotocol(result: Any) -> tuple[str, ...]:
    # A $connect handler accepts a subprotocol the client offered by returning it in this header.
    headers = result.get("headers") if isinstance(result, dict) else None
    if isinstance(headers, dict):
        for name, value in headers.items():
            if str(name).lower() == "sec-websocket-protocol" and isinstance(value, str):
                return (value,)
    return ()


def _identity_value(source: str, headers: Pairs, query: Pairs) -> str | None:
    """The value of an identity source such as ``route.request.querystring.token``."""
    for prefix, pairs, fold_case in (
        ("route.request.querystring.", query, False),
        ("route.request.header.", headers, True),
    ):
        if source.startswith(prefix):
            wanted = source[len(prefix) :]
            for name, value in pairs:
                if (name.lower() == wanted.lower()) if fold_case else (name == wanted):
                    return value
            return None
    raise ValueError(f"unsupported identity source: {source!r}")
