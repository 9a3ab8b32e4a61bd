"""One webhook POST: to the checked address, no redirects, a bounded answer, a deadline for all of it."""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass

from shared.webhooks.urls import Target

USER_AGENT = "comfy-api-service-webhooks/1"


@dataclass(frozen=True)
class Response:
    status: int | None  # None: no HTTP answer at all (connection refused, timeout, TLS failure)
    latency_ms: int
    retry_after: str | None = None
    body: str = ""
    error: str | None = None


class _PinnedHttps(http.client.HTTPSConnection):
    """TLS to the address that was checked, with the certificate checked against the URL's host."""

    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout, context=ssl.create_default_context())
        self._address = target.address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def _connection(target: Target, timeout: float) -> http.client.HTTPConnection:
    if target.scheme == "https":
        return _PinnedHttps(target, timeout)
    return http.client.HTTPConnection(target.address, target.port, timeout=timeout)


def post(
    target: Target, body: bytes, headers: Mapping[str, str], *, timeout: float, max_response_bytes: int
) -> Response:
    """POST ``body``; http.client follows no redirect, so a 3xx is an answer like any other."""
    started = time.monotonic()
    deadline = started + timeout
    connection = _connection(target, timeout)

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        connection.putrequest("POST", target.path, skip_host=True, skip_accept_encoding=True)
        all_headers = {
            "Host": target.host_header,
            "Content-Type": "application/json",
            "Content-Length": str(len(body)),
            "User-Agent": USER_AGENT,
            **headers,
        }
        for name, value in all_headers.items():
            connection.putheader(name, value)
        connection.endheaders(body)
        answer = connection.getresponse()
        chunks: list[bytes] = []
        read = 0
        while read < max_response_bytes and time.monotonic() < deadline:
            if connection.sock is not None:
                connection.sock.settimeout(max(deadline - time.monotonic(), 0.001))
            chunk = answer.read1(max_response_bytes - read) if max_response_bytes - read > 0 else b""
            if not chunk:
                break
            chunks.append(chunk)
            read += len(chunk)
        return Response(
            answer.status,
            elapsed(),
            answer.getheader("Retry-After"),
            b"".join(chunks).decode("utf-8", "replace"),
        )
    except TimeoutError:
        return Response(None, elapsed(), error=f"no answer within {timeout:g} s")
    except (OSError, http.client.HTTPException) as error:
        return Response(None, elapsed(), error=f"{type(error).__name__}: {error}"[:300])
    finally:
        connection.close()
