"""The Lambda events API Gateway sends, built from plain request data: pure functions, no I/O.

Shapes follow AWS's documented examples (REST proxy integration, payload 1.0; WebSocket ``$connect``,
``$disconnect`` and message events; the WebSocket REQUEST authorizer event) and Powertools' parser models.
"""

from __future__ import annotations

import base64
import secrets
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

Pairs = Iterable[tuple[str, str]]


@dataclass(frozen=True)
class ApiInfo:
    """What an event says about the API itself: its id, account, region and stage."""

    api_id: str = "local0apig"
    account_id: str = "123456789012"
    region: str = "us-east-1"
    stage: str = "local"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def request_time(epoch_ms: int) -> str:
    """``requestTime`` as API Gateway writes it (``11/Nov/2024:11:35:24 +0000``), independent of locale."""
    t = time.gmtime(epoch_ms / 1000)
    return (
        f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"
    )


def new_gateway_id() -> str:
    """An id shaped like API Gateway's connection, message and extended request ids (``BFHPhfCWIAMCKlQ=``)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(11)).decode("ascii")


def new_request_id() -> str:
    return str(uuid.uuid4())


def fold(pairs: Pairs, *, case_insensitive: bool) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Split repeated names the way REST and WebSocket APIs do: the single-value map keeps the last value,
    the multi-value map keeps them all. Header names group case-insensitively under the first spelling seen.
    """
    multi: dict[str, list[str]] = {}
    spelling: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower() if case_insensitive else name
        shown = spelling.setdefault(key, name)
        multi.setdefault(shown, []).append(value)
    single = {name: values[-1] for name, values in multi.items()}
    return single, multi


def encode_body(body: bytes, *, binary: bool) -> tuple[str | None, bool]:
    """(body, isBase64Encoded): null for no body, text when it is UTF-8 and not a binary media type."""
    if not body:
        return None, False
    if not binary:
        try:
            return body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode("ascii"), True


def _host_only(domain_name: str) -> str:
    return domain_name.rsplit(":", 1)[0] if domain_name.count(":") == 1 else domain_name


@dataclass(frozen=True)
class RestRequest:
    """One HTTP request as the REST emulator saw it; ``path`` is already percent-decoded."""

    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    query: tuple[tuple[str, str], ...]
    body: bytes
    source_ip: str
    domain_name: str
    binary: bool = False


def rest_proxy_event(
    api: ApiInfo,
    request: RestRequest,
    *,
    api_key: str | None,
    api_key_id: str | None,
    resource_id: str,
    request_id: str | None = None,
    epoch_ms: int | None = None,
) -> dict[str, Any]:
    """A REST API proxy integration event for the resources ``ANY /`` and ``ANY /{proxy+}``, as reached
    through a custom domain mapped to the stage at its root (so ``path`` and ``requestContext.path`` are
    the path the client sent, ``/v1/jobs``)."""
    epoch_ms = now_ms() if epoch_ms is None else epoch_ms
    headers, multi_headers = fold(request.headers, case_insensitive=True)
    query, multi_query = fold(request.query, case_insensitive=False)
    body, is_b64 = encode_body(request.body, binary=request.binary)
    user_agent = next((v for k, v in request.headers if k.lower() == "user-agent"), None)
    at_root = request.path in ("", "/")
    resource = "/" if at_root else "/{proxy+}"
    return {
        "resource": resource,
        "path": request.path,
        "httpMethod": request.method,
        "headers": headers or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": None if at_root else {"proxy": request.path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourceId": resource_id,
            "resourcePath": resource,
            "httpMethod": request.method,
            "extendedRequestId": new_gateway_id(),
            "requestTime": request_time(epoch_ms),
            "path": request.path,
            "accountId": api.account_id,
            "protocol": "HTTP/1.1",
            "stage": api.stage,
            "domainPrefix": _host_only(request.domain_name).split(".")[0],
            "requestTimeEpoch": epoch_ms,
            "requestId": request_id or new_request_id(),
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "apiKey": api_key,
                "apiKeyId": api_key_id,
                "sourceIp": request.source_ip,
                "principalOrgId": None,
                "accessKey": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": user_agent,
                "user": None,
            },
            "domainName": request.domain_name,
            "apiId": api.api_id,
        },
        "body": body,
        "isBase64Encoded": is_b64,
    }


@dataclass(frozen=True)
class WsPeer:
    """What API Gateway remembers about a WebSocket connection and repeats in every event for it."""

    connection_id: str
    connected_at_ms: int
    source_ip: str
    user_agent: str | None
    domain_name: str
    authorizer: Mapping[str, Any] | None = None


def connect_arn(api: ApiInfo) -> str:
    return f"arn:aws:execute-api:{api.region}:{api.account_id}:{api.api_id}/{api.stage}/$connect"


def _ws_request_context(
    api: ApiInfo,
    peer: WsPeer,
    *,
    route_key: str,
    event_type: str,
    request_id: str,
    epoch_ms: int,
    with_authorizer: bool = True,
) -> dict[str, Any]:
    identity: dict[str, Any] = {"sourceIp": peer.source_ip}
    if peer.user_agent is not None:
        identity["userAgent"] = peer.user_agent
    context: dict[str, Any] = {
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": request_id,
        "requestTime": request_time(epoch_ms),
        "messageDirection": "IN",
        "stage": api.stage,
        "connectedAt": peer.connected_at_ms,
        "requestTimeEpoch": epoch_ms,
        "identity": identity,
        "requestId": request_id,
        "domainName": peer.domain_name,
        "connectionId": peer.connection_id,
        "apiId": api.api_id,
    }
    if with_authorizer and peer.authorizer is not None:
        context["authorizer"] = dict(peer.authorizer)
    return context


def ws_authorizer_event(
    api: ApiInfo, peer: WsPeer, headers: Pairs, query: Pairs, *, request_id: str, epoch_ms: int
) -> dict[str, Any]:
    """The REQUEST authorizer event of a WebSocket ``$connect``: empty maps, not null, when absent."""
    single_headers, multi_headers = fold(headers, case_insensitive=True)
    single_query, multi_query = fold(query, case_insensitive=False)
    return {
        "type": "REQUEST",
        "methodArn": connect_arn(api),
        "headers": single_headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": single_query,
        "multiValueQueryStringParameters": multi_query,
        "stageVariables": {},
        "requestContext": _ws_request_context(
            api,
            peer,
            route_key="$connect",
            event_type="CONNECT",
            request_id=request_id,
            epoch_ms=epoch_ms,
            with_authorizer=False,
        ),
    }


def ws_connect_event(
    api: ApiInfo, peer: WsPeer, headers: Pairs, query: Pairs, *, request_id: str, epoch_ms: int
) -> dict[str, Any]:
    """``$connect``: the handshake's headers, and its query string only when it has one."""
    single_headers, multi_headers = fold(headers, case_insensitive=True)
    single_query, multi_query = fold(query, case_insensitive=False)
    event: dict[str, Any] = {"headers": single_headers, "multiValueHeaders": multi_headers}
    if single_query:
        event["queryStringParameters"] = single_query
        event["multiValueQueryStringParameters"] = multi_query
    event["requestContext"] = _ws_request_context(
        api, peer, route_key="$connect", event_type="CONNECT", request_id=request_id, epoch_ms=epoch_ms
    )
    event["isBase64Encoded"] = False
    return event


def ws_message_event(
    api: ApiInfo,
    peer: WsPeer,
    *,
    route_key: str,
    data: str | bytes,
    request_id: str | None = None,
    epoch_ms: int | None = None,
) -> dict[str, Any]:
    """A message on a route; binary frames arrive base64-encoded."""
    epoch_ms = now_ms() if epoch_ms is None else epoch_ms
    context = _ws_request_context(
        api,
        peer,
        route_key=route_key,
        event_type="MESSAGE",
        request_id=request_id or new_gateway_id(),
        epoch_ms=epoch_ms,
    )
    # messageId sits second, after routeKey, in API Gateway's own events.
    context = {"routeKey": route_key, "messageId": new_gateway_id(), **context}
    if isinstance(data, bytes):
        body, is_b64 = base64.b64encode(data).decode("ascii"), True
    else:
        body, is_b64 = data, False
    return {"requestContext": context, "body": body, "isBase64Encoded": is_b64}


def ws_disconnect_event(
    api: ApiInfo,
    peer: WsPeer,
    *,
    status_code: int,
    reason: str,
    request_id: str | None = None,
    epoch_ms: int | None = None,
) -> dict[str, Any]:
    """``$disconnect``: API Gateway sends a fixed, mostly empty header set here, not the handshake's."""
    epoch_ms = now_ms() if epoch_ms is None else epoch_ms
    headers = {"Host": peer.domain_name, "x-api-key": "", "X-Forwarded-For": "", "x-restapi": ""}
    context = _ws_request_context(
        api,
        peer,
        route_key="$disconnect",
        event_type="DISCONNECT",
        request_id=request_id or new_gateway_id(),
        epoch_ms=epoch_ms,
    )
    context = {
        "routeKey": "$disconnect",
        "disconnectStatusCode": status_code,
        **context,
        "disconnectReason": reason,
    }
    return {
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "requestContext": context,
        "isBase64Encoded": False,
    }
