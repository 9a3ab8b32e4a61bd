"""Counting what the API Gateway emulator does for a job: REST requests, WebSocket messages in and
connection time, and every Lambda invocation with its duration and the log bytes its handler wrote:
those API Gateway makes, and those the stack's event sources make (the jobs table's stream feeding the
webhook dispatcher, the webhook attempts queue, the dead-letter queues), which no API meter sees.

The Lambda handlers run in this process, on the emulator's executor threads (and the thread pool their
web framework hands sync routes to); whatever a thread other than the main one writes to stdout is
theirs, counted as the functions' log output and kept off the terminal.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from aiohttp import web

from local.apigw import invoke as invoke_module
from local.apigw.rest import RestApiEmulator
from local.apigw.websocket import WebSocketApiEmulator
from local.dlq_source import SqsEventSource
from local.stream_source import StreamEventSource


@dataclass(frozen=True)
class Invocation:
    function: str
    memory_mb: int
    duration_ms: float


class _CountingStdout:
    """sys.stdout for this process: the main thread's writes are shown, the others' counted."""

    def __init__(self, real: TextIO) -> None:
        self._real = real
        self._lock = threading.Lock()
        self.bytes = 0

    def write(self, text: str) -> int:
        if threading.current_thread() is threading.main_thread():
            return self._real.write(text)
        with self._lock:
            self.bytes += len(text.encode())
        return len(text)

    def flush(self) -> None:
        self._real.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class GatewayMeter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.invocations: list[Invocation] = []
        self.rest_requests = 0
        # (bytes) of each message a client sent on a WebSocket
        self.messages_in: list[int] = []
        # seconds each closed WebSocket connection lasted
        self.connection_seconds: list[float] = []
        self._stdout: _CountingStdout | None = None

    def mark(self) -> dict[str, int]:
        with self._lock:
            return {
                "log_bytes": self._stdout.bytes if self._stdout else 0,
                "invocations": len(self.invocations),
                "rest": self.rest_requests,
                "in": len(self.messages_in),
                "connections": len(self.connection_seconds),
            }

    def since(self, mark: dict[str, int]) -> dict[str, Any]:
        with self._lock:
            return {
                "log_bytes": (self._stdout.bytes if self._stdout else 0) - mark["log_bytes"],
                "invocations": self.invocations[mark["invocations"] :],
                "rest_requests": self.rest_requests - mark["rest"],
                "messages_in": self.messages_in[mark["in"] :],
                "connection_seconds": self.connection_seconds[mark["connections"] :],
            }

    def install(self) -> None:
        """Wraps the emulator; call before the stack builds its gateway."""
        real = sys.stdout
        self._stdout = stdout = _CountingStdout(real)
        sys.stdout = stdout
        # Loggers made before this point (the handlers' modules may be imported already) hold the real
        # stream: point them at the counting one too.
        for named in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
            for handler in getattr(named, "handlers", []):
                if isinstance(handler, logging.StreamHandler) and handler.stream is real:
                    handler.setStream(stdout)  # type: ignore[arg-type]
        meter = self
        run: Callable[..., Any] = invoke_module._run

        def counted_run(function: invoke_module.LambdaFunction, payload: str, context: Any) -> Any:
            started = time.perf_counter()
            try:
                return run(function, payload, context)
            finally:
                duration = (time.perf_counter() - started) * 1000
                with meter._lock:
                    meter.invocations.append(Invocation(function.name, function.memory_mb, duration))

        invoke_module._run = counted_run
        self._count_event_sources()

        handle = RestApiEmulator._handle

        async def counted_handle(api: RestApiEmulator, request: web.Request) -> web.StreamResponse:
            with meter._lock:
                meter.rest_requests += 1
            return await handle(api, request)

        setattr(RestApiEmulator, "_handle", counted_handle)  # noqa: B010

        route = WebSocketApiEmulator._route

        async def counted_route(api: WebSocketApiEmulator, connection: Any, data: str | bytes) -> None:
            size = len(data.encode() if isinstance(data, str) else data)
            with meter._lock:
                meter.messages_in.append(size)
            await route(api, connection, data)

        setattr(WebSocketApiEmulator, "_route", counted_route)  # noqa: B010

        handshake = WebSocketApiEmulator._handshake

        async def counted_handshake(api: WebSocketApiEmulator, request: web.Request) -> web.StreamResponse:
            started = time.monotonic()
            try:
                return await handshake(api, request)
            finally:
                with meter._lock:
                    meter.connection_seconds.append(time.monotonic() - started)

        setattr(WebSocketApiEmulator, "_handshake", counted_handshake)  # noqa: B010

    def timed(self, name: str, handler: Callable[..., Any]) -> Callable[..., Any]:
        """``handler`` counted as one invocation of the function ``name`` each time it is called."""
        meter = self

        def invoked(event: Any, context: Any) -> Any:
            started = time.perf_counter()
            try:
                return handler(event, context)
            finally:
                duration = (time.perf_counter() - started) * 1000
                with meter._lock:
                    # Memory is the deployment's (bench.cost_model.Deployment), as for the API's functions.
                    meter.invocations.append(Invocation(name, 0, duration))

        return invoked

    def _count_event_sources(self) -> None:
        """Lambda invokes these from its own pollers: a stream's batch, a queue's batch, each one call."""
        for source in (StreamEventSource, SqsEventSource):
            init = source.__init__

            def counted_init(made: Any, *args: Any, _init: Callable[..., None] = init, **kwargs: Any) -> None:
                _init(made, *args, **kwargs)
                made._handler = self.timed(made._name, made._handler)

            setattr(source, "__init__", counted_init)  # noqa: B010
