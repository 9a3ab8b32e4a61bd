"""What API Gateway does itself on the way in and out: the headers it adds to requests and its own error
answers (gateway responses), shared by the REST, WebSocket and @connections halves."""

from __future__ import annotations

import json
import secrets
import time

from aiohttp import web

from local.apigw.events import new_request_id

# Headers API Gateway sets itself on the way in, whatever the client sent.
_GATEWAY_REQUEST_HEADERS = frozenset(
    {"x-forwarded-for", "x-forwarded-port", "x-forwarded-proto", "x-amzn-trace-id"}
)


def trace_id() -> str:
    """An X-Ray trace header value, as API Gateway adds to each request."""
    return f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)}"


def gateway_error(
    status: int, message: str, error_type: str | None = None, *, request_id: str | None = None
) -> web.Response:
    """A JSON ``{"message": ...}`` answer with the ``x-amzn-ErrorType`` botocore maps to an exception."""
    headers = {"x-amzn-RequestId": request_id or new_request_id()}
    if error_type:
        headers["x-amzn-ErrorType"] = error_type
    return web.Response(
        status=status,
        body=json.dumps({"message": message}).encode(),
        content_type="application/json",
        headers=headers,
    )


def missing_authentication_token(request_id: str | None = None) -> web.Response:
    # API Gateway's answer for a path or method no resource matches.
    return gateway_error(
        403, "Missing Authentication Token", "MissingAuthenticationTokenException", request_id=request_id
    )


def incoming_headers(request: web.Request) -> list[tuple[str, str]]:
    """The request's headers as sent (names keep their case, repeats stay), plus the ``X-Forwarded-*`` and
    ``X-Amzn-Trace-Id`` headers API Gateway adds; a client's X-Forwarded-For is extended, not trusted."""
    headers = []
    forwarded = []
    for raw_name, raw_value in request.raw_headers:
        name, value = raw_name.decode("utf-8", "replace"), raw_value.decode("utf-8", "replace")
        if name.lower() == "x-forwarded-for":
            forwarded.append(value)
        if name.lower() not in _GATEWAY_REQUEST_HEADERS:
            headers.append((name, value))
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    headers += [
        ("X-Amzn-Trace-Id", trace_id()),
        ("X-Forwarded-For", ", ".join([*forwarded, source_ip(request)])),
        ("X-Forwarded-Port", str(sockname[1]) if sockname else "80"),
        ("X-Forwarded-Proto", request.scheme),
    ]
    return headers


def source_ip(request: web.Request) -> str:
    return request.remote or "127.0.0.1"
