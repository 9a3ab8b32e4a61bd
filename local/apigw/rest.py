"""The REST half: HTTP requests in, REST API proxy integration (payload 1.0) events to one Lambda handler.

The emulated API is the deployed one's shape, ``ANY /`` and ``ANY /{proxy+}`` to one function, every method
requiring an API key except ``GET`` on the public resources given (the API's documentation), reached as
through a custom domain mapped to the stage at its root: ``GET http://127.0.0.1:P/v1/jobs`` gives
``path == "/v1/jobs"``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import fnmatch
import logging
import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import Executor
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from local.apigw.events import ApiInfo, RestRequest, new_request_id, rest_proxy_event
from local.apigw.gateway import gateway_error, incoming_headers, source_ip
from local.apigw.invoke import (
    Handler,
    InvocationError,
    InvocationTimeout,
    LambdaFunction,
    as_function,
    invoke,
    lambda_executor,
)

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 10 * 1024 * 1024
_PROXY_RESPONSE_KEYS = frozenset({"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"})
# Framing headers are the server's business; a handler's copy would only contradict the real body.
_DROPPED_RESPONSE_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})


class MalformedResponseError(Exception):
    """The handler's answer is not a valid proxy response ("Malformed Lambda proxy response")."""


class RestApiEmulator:
    """A REST API with API keys and a Lambda proxy integration on ``/`` and ``/{proxy+}``.

    ``api_keys`` maps each accepted ``x-api-key`` value to its API key id, which the handler sees as
    ``requestContext.identity.apiKeyId``: a fixed mapping, or a function asked on each request (run on
    the executor: it may call moto, as API Gateway checks its own key store). Every path needs a key, as
    in the deployed API, except a ``GET`` of one of ``public_paths`` (resource paths, where ``{name}`` is
    one path segment).
    """

    def __init__(
        self,
        handler: Handler | LambdaFunction,
        api_keys: Mapping[str, str] | Callable[[str], str | None],
        *,
        api: ApiInfo | None = None,
        binary_media_types: Sequence[str] = (),
        max_body_bytes: int = MAX_BODY_BYTES,
        integration_timeout_s: float = 29.0,
        resource_id: str = "pr0xy1",
        public_paths: Sequence[str] = (),
    ) -> None:
        self.function = as_function(handler, "api")
        self.api_keys = dict(api_keys) if isinstance(api_keys, Mapping) else api_keys
        self._public = [_resource_pattern(path) for path in public_paths]
        self.api = api or ApiInfo()
        self.binary_media_types = tuple(binary_media_types)
        self.max_body_bytes = max_body_bytes
        self.integration_timeout_s = integration_timeout_s
        self.resource_id = resource_id
        self._executor: Executor | None = None

    def app(self, executor: Executor | None = None) -> web.Application:
        """An aiohttp application serving the API; without an executor it makes and closes its own."""
        # One byte of slack so that a body of exactly the limit is still read whole.
        app = web.Application(client_max_size=self.max_body_bytes + 1)
        # Any path at all, newlines (%0A) included: API Gateway hands every one to the proxy resource.
        app.router.add_route("*", r"/{tail:[\s\S]*}", self._handle)
        if executor is not None:
            self._executor = executor
        else:
            app.cleanup_ctx.append(self._own_executor)
        return app

    async def _api_key_id(self, value: str) -> str | None:
        if isinstance(self.api_keys, dict):
            return self.api_keys.get(value)
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.api_keys, value)

    async def _own_executor(self, _app: web.Application) -> AsyncIterator[None]:
        pool = lambda_executor(16, "apigw-rest")
        self._executor = pool
        yield
        pool.shutdown(wait=False, cancel_futures=True)

    def _is_public(self, request: web.Request) -> bool:
        return request.method == "GET" and any(p.fullmatch(request.path) for p in self._public)

    def _is_binary(self, content_type: str) -> bool:
        media_type = content_type.split(";", 1)[0].strip().lower()
        return any(fnmatch.fnmatchcase(media_type, pattern.lower()) for pattern in self.binary_media_types)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        request_id = new_request_id()
        api_key = request.headers.get("x-api-key")
        api_key_id = await self._api_key_id(api_key) if api_key is not None else None
        if api_key_id is None and not self._is_public(request):
            return gateway_error(403, "Forbidden", "ForbiddenException", request_id=request_id)
        if request.content_length is not None and request.content_length > self.max_body_bytes:
            return gateway_error(413, "Request Too Long", request_id=request_id)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return gateway_error(413, "Request Too Long", request_id=request_id)

        event = rest_proxy_event(
            self.api,
            self._rest_request(request, body),
            api_key=api_key,
            api_key_id=api_key_id,
            resource_id=self.resource_id,
            request_id=request_id,
        )
        assert self._executor is not None, "the application has not started"
        try:
            result = await invoke(
                self.function,
                event,
                api=self.api,
                executor=self._executor,
                timeout_s=self.integration_timeout_s,
            )
            response = proxy_response_to_http(result)
        except InvocationTimeout:
            return gateway_error(504, "Endpoint request timed out", request_id=request_id)
        except InvocationError:
            return gateway_error(502, "Internal server error", request_id=request_id)
        except MalformedResponseError as exc:
            logger.error("Malformed Lambda proxy response from %s: %s", self.function.name, exc)
            return gateway_error(502, "Internal server error", request_id=request_id)
        response.headers["x-amzn-RequestId"] = request_id
        response.headers["x-amz-apigw-id"] = event["requestContext"]["extendedRequestId"]
        return response

    def _rest_request(self, request: web.Request, body: bytes) -> RestRequest:
        return RestRequest(
            method=request.method,
            path=request.path,
            headers=tuple(incoming_headers(request)),
            query=tuple(request.query.items()),
            body=body,
            source_ip=source_ip(request),
            domain_name=request.host,
            binary=self._is_binary(request.headers.get("Content-Type", "")),
        )


def _resource_pattern(path: str) -> re.Pattern[str]:
    """A resource path as API Gateway matches it: ``{name}`` is one non-empty segment."""
    return re.compile(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)))


def proxy_response_to_http(result: Any) -> web.Response:
    """Turn a proxy integration response into HTTP as API Gateway does; values in ``multiValueHeaders``
    win over ``headers`` of the same name; no Content-Type means ``application/json``."""
    if not isinstance(result, dict):
        raise MalformedResponseError(f"response is a {type(result).__name__}, not an object")
    extra = set(result) - _PROXY_RESPONSE_KEYS
    if extra:
        raise MalformedResponseError(f"unexpected keys {sorted(extra)}")
    status = result.get("statusCode")
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise MalformedResponseError(f"statusCode {status!r} is not an HTTP status")

    single = result.get("headers") or {}
    multi = result.get("multiValueHeaders") or {}
    if not isinstance(single, dict) or not isinstance(multi, dict):
        raise MalformedResponseError("headers and multiValueHeaders must be objects")
    headers: CIMultiDict[str] = CIMultiDict()
    multi_names = {str(name).lower() for name in multi}
    for name, value in single.items():
        if str(name).lower() not in multi_names:
            headers.add(str(name), _header_value(value))
    for name, values in multi.items():
        if not isinstance(values, list):
            raise MalformedResponseError(f"multiValueHeaders[{name!r}] is not a list")
        for value in values:
            headers.add(str(name), _header_value(value))
    for name in _DROPPED_RESPONSE_HEADERS:
        headers.popall(name, None)
    headers.setdefault("Content-Type", "application/json")

    body = result.get("body")
    if body is not None and not isinstance(body, str):
        raise MalformedResponseError(f"body is a {type(body).__name__}, not a string")
    if result.get("isBase64Encoded"):
        try:
            payload = base64.b64decode(body or "", validate=True)
        except (binascii.Error, ValueError) as exc:
            raise MalformedResponseError("isBase64Encoded but the body is not base64") from exc
    else:
        payload = (body or "").encode("utf-8")
    return web.Response(status=status, body=payload, headers=headers)


def _header_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None or not isinstance(value, str | int | float):
        raise MalformedResponseError(f"header value {value!r} is not a string")
    return str(value)
