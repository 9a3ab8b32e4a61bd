"""Both halves on 127.0.0.1, on a background thread with its own event loop, for tests and the local stack.

The REST API and the WebSocket API listen on two ports, as they are two APIs with two hosts in AWS:

- REST: ``http://127.0.0.1:R`` (a request to ``/v1/jobs`` arrives with ``path == "/v1/jobs"``);
- WebSocket: ``ws://127.0.0.1:W/<stage>``;
- its management API: ``http://127.0.0.1:W/<stage>``, the ``endpoint_url`` for boto3's
  ``apigatewaymanagementapi`` client.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from types import TracebackType

from aiohttp import web
from aiohttp.typedefs import Middleware

from local.apigw.invoke import LambdaExecutor, lambda_executor
from local.apigw.rest import RestApiEmulator
from local.apigw.websocket import WebSocketApiEmulator

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmulatorUrls:
    rest_url: str | None
    websocket_url: str | None
    management_url: str | None


class ApiGatewayEmulator:
    """Serves a REST API, a WebSocket API, or both. Port 0 picks a free port.

    ``start()`` returns the URLs once both are listening; ``stop()`` closes open WebSockets (each gets its
    ``$disconnect``) and waits for the thread. Handlers share one thread pool of ``max_workers``.
    """

    def __init__(
        self,
        rest: RestApiEmulator | None = None,
        websocket: WebSocketApiEmulator | None = None,
        *,
        host: str = "127.0.0.1",
        rest_port: int = 0,
        websocket_port: int = 0,
        max_workers: int = 32,
        shutdown_timeout_s: float = 5.0,
        rest_middlewares: Sequence[Middleware] = (),
    ) -> None:
        if rest is None and websocket is None:
            raise ValueError("nothing to serve: give a REST API, a WebSocket API or both")
        self.rest = rest
        self.websocket = websocket
        self.host = host
        self.rest_port = rest_port
        self.websocket_port = websocket_port
        self.max_workers = max_workers
        self.shutdown_timeout_s = shutdown_timeout_s
        # In front of the REST API on its port, e.g. the console's static files (local.apigw.static).
        self.rest_middlewares = tuple(rest_middlewares)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runners: list[web.AppRunner] = []
        self._executor: LambdaExecutor | None = None
        self._urls: EmulatorUrls | None = None

    @property
    def urls(self) -> EmulatorUrls:
        if self._urls is None:
            raise RuntimeError("the emulator is not running")
        return self._urls

    def start(self, timeout_s: float = 10.0) -> EmulatorUrls:
        if self._thread is not None:
            raise RuntimeError("already started")
        ready: Future[EmulatorUrls] = Future()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="apigw-emulator", daemon=True)
        self._thread.start()
        try:
            self._urls = ready.result(timeout=timeout_s)
        except BaseException:
            self._thread.join(timeout=timeout_s)
            self._thread = None
            raise
        return self._urls

    def stop(self, timeout_s: float = 15.0) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._cleanup(), loop).result(timeout=timeout_s)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=timeout_s)
            self._thread = self._loop = None
            self._urls = None

    def __enter__(self) -> EmulatorUrls:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self, ready: Future[EmulatorUrls]) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            urls = loop.run_until_complete(self._serve())
        except BaseException as exc:
            ready.set_exception(exc)
            loop.run_until_complete(self._cleanup())
            loop.close()
            self._loop = None
            return
        ready.set_result(urls)
        try:
            loop.run_forever()
        finally:
            loop.close()
            self._loop = None

    async def _serve(self) -> EmulatorUrls:
        self._executor = lambda_executor(self.max_workers)
        rest_url = ws_url = management_url = None
        if self.rest is not None:
            rest_app = self.rest.app(self._executor)
            rest_app.middlewares.extend(self.rest_middlewares)
            port = await self._listen(rest_app, self.rest_port)
            rest_url = f"http://{self.host}:{port}"
        if self.websocket is not None:
            port = await self._listen(self.websocket.app(self._executor), self.websocket_port)
            stage = self.websocket.api.stage
            ws_url = f"ws://{self.host}:{port}/{stage}"
            management_url = f"http://{self.host}:{port}/{stage}"
        logger.info("API Gateway emulator: REST %s, WebSocket %s", rest_url, ws_url)
        return EmulatorUrls(rest_url, ws_url, management_url)

    async def _listen(self, app: web.Application, port: int) -> int:
        runner = web.AppRunner(app, shutdown_timeout=self.shutdown_timeout_s, access_log=None)
        await runner.setup()
        self._runners.append(runner)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, port))
        except OSError:
            sock.close()
            raise
        site = web.SockSite(runner, sock)
        await site.start()
        return int(sock.getsockname()[1])

    async def _cleanup(self) -> None:
        # The WebSocket API first, so $disconnect handlers still find the thread pool running.
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
