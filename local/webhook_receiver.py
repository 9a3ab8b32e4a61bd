"""A webhook receiver on 127.0.0.1 for the tests and the benchmark: it verifies each signature with the
Standard Webhooks library, as a receiver would, and answers as it is told (2xx, 500, 410, slowly,
``Retry-After``), and can go down and come back on the same port.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass(frozen=True)
class Reply:
    status: int = 204
    delay_seconds: float = 0.0
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Received:
    at: float
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    verified: bool
    status: int  # what it answered


@dataclass
class WebhookReceiver:
    # Secrets to verify with, by path (each endpoint its own path); a request no secret verifies is a 401.
    secrets: dict[str, str] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    # Replies to give, in order, by path; when none is left: the default.
    script: dict[str, deque[Reply]] = field(default_factory=dict)
    default: Reply = field(default_factory=Reply)
    port: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, path: str, *replies: Reply) -> None:
        with self._lock:
            self.script.setdefault(path, deque()).extend(replies)

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                path = self.path
                with receiver._lock:
                    queue = receiver.script.get(path)
                    reply = queue.popleft() if queue else receiver.default
                verified = receiver._verify(path, body, dict(self.headers.items()))
                status = reply.status if verified else 401
                if reply.delay_seconds:
                    time.sleep(reply.delay_seconds)
                with receiver._lock:
                    receiver.received.append(
                        Received(
                            time.time(), path, dict(self.headers.items()), json.loads(body), verified, status
                        )
                    )
                try:
                    self.send_response(status)
                    for name, value in reply.headers:
                        self.send_header(name, value)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender gave up waiting

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True).start()
        return self

    def _verify(self, path: str, body: bytes, headers: dict[str, str]) -> bool:
        secret = self.secrets.get(path)
        if secret is None:
            return False
        try:
            Webhook(secret).verify(body, headers)
        except WebhookVerificationError:
            return False
        return True

    def stop(self) -> None:
        """Down: connections to its port are refused until :meth:`start` again (same port)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def events(
        self, path: str | None = None, *, delivered_only: bool = True, job_id: str | None = None
    ) -> list[tuple[str, str]]:
        """(webhook-id, type) of each request received (answered 2xx, if ``delivered_only``), of one job's
        events if ``job_id`` is given (a tenant's endpoint hears all of the tenant's jobs)."""
        with self._lock:
            return [
                (r.headers.get("webhook-id", ""), str(r.body.get("type")))
                for r in self.received
                if (path is None or r.path == path)
                and (not delivered_only or 200 <= r.status < 300)
                and (job_id is None or (r.body.get("data") or {}).get("job_id") == job_id)
            ]
