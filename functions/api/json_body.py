"""Reading a JSON request body before FastAPI does: its media type, its size, its depth and its numbers.

Python's parser accepts ``NaN`` and ``Infinity`` and turns ``1e400`` into infinity; pydantic and the
serializers behind it fail on documents nested a few hundred levels deep. Each of those is refused here,
before anything else reads the body, with a pointer to where it is.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Coroutine
from email.message import Message
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from functions.api.context import default_context
from functions.api.problems import PROBLEM
from shared.errors import DomainError, FieldError, InvalidRequest, PayloadTooLarge

# Deeper than any ComfyUI workflow (body > workflow > node > inputs > value > list) by a wide margin.
MAX_JSON_DEPTH = 32
# curl -d sends this unless told otherwise; such a body is read as the JSON it almost always is.
CURL_DEFAULT_MEDIA_TYPE = "application/x-www-form-urlencoded"
_STRUCTURE = re.compile(r'[\[\]{},"]')
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)


# How a route with a JSON body documents the answers this module gives, in the OpenAPI.
JSON_BODY_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {**PROBLEM, "description": "The body is larger than the limit (1 MiB by default)"},
    415: {
        **PROBLEM,
        "description": "The body is not sent as JSON: use Content-Type: application/json (a body with "
        "no Content-Type, or with curl's default application/x-www-form-urlencoded, is read as JSON)",
    },
    422: {
        **PROBLEM,
        "description": f"The request is not valid: each fault with a JSON pointer (JSON nested more than "
        f"{MAX_JSON_DEPTH} levels deep and non-finite numbers such as NaN or 1e400 are refused too)",
    },
}


class UnsupportedMediaType(DomainError):
    status = 415
    title = "The body must be JSON"
    type_slug = "unsupported-media-type"


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _media_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    message = Message()
    message["content-type"] = content_type
    return message.get_content_type()


def check_media_type(content_type: str | None) -> None:
    """JSON, no Content-Type at all, or curl's default: anything else is a 415 that names the header."""
    media_type = _media_type(content_type)
    if media_type is None or media_type == CURL_DEFAULT_MEDIA_TYPE:
        return
    main, _, sub = media_type.partition("/")
    if main == "application" and (sub == "json" or sub.endswith("+json")):
        return
    raise UnsupportedMediaType(
        f"The body is sent as {media_type!r}; send JSON with the header Content-Type: application/json.",
        [FieldError("header:Content-Type", f"must be application/json, got {media_type!r}")],
    )


def too_deep_at(text: str, limit: int = MAX_JSON_DEPTH) -> str | None:
    """The JSON pointer of the first container nested deeper than ``limit``, or None.

    A scan, not a parse: it needs no recursion, so no depth can make it fail, and it reads each character
    once, so no text can make it slow. Malformed text is left to the parser to explain.
    """
    # One entry per open container: the key (or index) its current member sits under.
    path: list[str | int] = []
    expecting_key = False
    position = 0
    while (match := _STRUCTURE.search(text, position)) is not None:
        symbol = match.group()
        position = match.end()
        if symbol == '"':
            string = _STRING.match(text, match.start())
            if string is None:
                return None  # an unterminated string
            position = string.end()
            if expecting_key and path:
                try:
                    path[-1] = str(json.loads(string.group()))
                except ValueError:
                    return None  # a bad escape
                expecting_key = False
        elif symbol in "{[":
            if len(path) >= limit:
                return "/" + "/".join(_escape(str(part)) for part in path)
            path.append(0 if symbol == "[" else "")
            expecting_key = symbol == "{"
        elif symbol in "}]":
            if path:
                path.pop()
            expecting_key = False
        elif path and isinstance(path[-1], int):  # a comma in an array
            path[-1] += 1
        else:  # a comma in an object
            expecting_key = True
    return None


def non_finite_pointers(value: Any, pointer: str = "") -> list[str]:
    """Where ``value`` holds a number JSON cannot carry (NaN, an infinity, or one too large for a double)."""
    if isinstance(value, float) and not math.isfinite(value):
        return [pointer]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in non_finite_pointers(v, f"{pointer}/{_escape(k)}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in non_finite_pointers(v, f"{pointer}/{i}")]
    return []


def check_json_body(body: bytes, max_bytes: int) -> None:
    """Refuse a body that is too large, nested too deep, or holds a non-finite number."""
    if len(body) > max_bytes:
        raise PayloadTooLarge(
            f"The body is {len(body)} bytes; at most {max_bytes} are accepted.",
            [FieldError("", f"{len(body)} bytes is more than the limit of {max_bytes}")],
        )
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return  # FastAPI's own parse explains that the body is not UTF-8 JSON
    deep = too_deep_at(text)
    if deep is not None:
        raise InvalidRequest(
            f"The body is nested more than {MAX_JSON_DEPTH} levels deep (at {deep or 'the root'}).",
            [FieldError(deep, f"nested more than {MAX_JSON_DEPTH} levels deep")],
        )
    try:
        parsed = json.loads(text)  # NaN and Infinity parse to non-finite floats, as 1e400 does
    except (ValueError, RecursionError):
        return  # malformed: FastAPI's own parse says where
    pointers = non_finite_pointers(parsed)
    if pointers:
        raise InvalidRequest(
            f"The body holds {len(pointers)} number(s) that are not finite (NaN, Infinity, or too "
            f"large for a 64-bit float), the first at {pointers[0]}.",
            [FieldError(p, "must be a finite number") for p in pointers],
        )


class JsonBodyRoute(APIRoute):
    """A route whose JSON body is checked before FastAPI parses it (see the module's docstring)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        if self.body_field is None:
            return handle

        async def checked(request: Request) -> Response:
            check_media_type(request.headers.get("content-type"))
            check_json_body(await request.body(), default_context().settings.max_body_bytes)
            return await handle(_as_json(request))

        return checked


def _as_json(request: Request) -> Request:
    """The request as FastAPI should read it: a body without a media type, or with curl's default, is the
    JSON it holds. (FastAPI's strict Content-Type guards cookie-authenticated apps against cross-site
    forms; every call here carries an API key header, which no cross-site form can send.)"""
    if _media_type(request.headers.get("content-type")) not in {None, CURL_DEFAULT_MEDIA_TYPE}:
        return request
    scope = dict(request.scope)
    scope["headers"] = [
        *((name, value) for name, value in request.scope["headers"] if name != b"content-type"),
        (b"content-type", b"application/json"),
    ]
    rewritten = Request(scope, request.receive)
    rewritten._body = request._body  # the body is already read: hand it over rather than read it again
    return rewritten
