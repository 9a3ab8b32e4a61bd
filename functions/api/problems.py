"""RFC 9457 problem documents: every error the API returns is mapped here, and only here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from functions.observability import logger
from shared.errors import DomainError, ServiceUnavailable

PROBLEM_MEDIA_TYPE = "application/problem+json"


class ProblemFieldError(BaseModel):
    pointer: str
    detail: str
    node_id: str | None = None
    input: str | None = None
    closest: list[str] | None = None


class Problem(BaseModel):
    """An RFC 9457 problem document; ``errors`` lists each fault with a JSON pointer into the body."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[ProblemFieldError] | None = None


# How a route documents its problem answers in the OpenAPI.
PROBLEM: dict[str, Any] = {"model": Problem, "content": {"application/problem+json": {}}}


def problem_type(slug: str) -> str:
    return f"urn:comfy-api-service:problem:{slug}"


def problem_response(
    request: Request,
    status: int,
    slug: str,
    title: str,
    detail: str,
    errors: Sequence[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": problem_type(slug),
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    if errors:
        body["errors"] = list(errors)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _pointer_from_loc(loc: Sequence[Any]) -> str:
    where, *rest = loc if loc else ("body",)
    if where in {"header", "query", "path"}:
        return f"{where}:{'.'.join(str(p) for p in rest)}"
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in rest]
    return "/" + "/".join(parts) if parts else ""


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for error in exc.errors():
        loc = error.get("loc", ())
        message = str(error.get("msg", "invalid"))
        if error.get("type") == "json_invalid":
            message = f"the body is not valid JSON: {error.get('ctx', {}).get('error', message)}"
            loc = ("body",)
        out.append({"pointer": _pointer_from_loc(loc), "detail": message})
    return out


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> JSONResponse:
        return problem_response(
            request,
            exc.status,
            exc.type_slug,
            exc.title,
            exc.detail,
            [e.as_dict() for e in exc.errors],
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc)
        first = errors[0] if errors else {"pointer": "", "detail": "invalid request"}
        detail = f"{first['pointer'] or 'the body'}: {first['detail']}"
        return problem_response(request, 422, "invalid-request", "The request is not valid", detail, errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # FastAPI's answer to a body it cannot decode: the same fault as malformed JSON, so the same 422.
            detail = "the body is not valid JSON text (it must be UTF-8 encoded JSON)"
            errors = [{"pointer": "", "detail": detail}]
            return problem_response(
                request, 422, "invalid-request", "The request is not valid", detail, errors
            )
        slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        headers = dict(exc.headers) if exc.headers else {}
        if exc.status_code == 405:
            # Starlette names only the first route that matched the path; list every method it has.
            path = request.url.path
            methods = {
                m
                for r in request.app.routes
                if isinstance(r, APIRoute) and r.path_regex.match(path)
                for m in r.methods or ()
            }
            headers["Allow"] = ", ".join(sorted(methods))
        return problem_response(
            request,
            exc.status_code,
            slug,
            str(exc.detail),
            f"{request.method} {request.url.path}: {exc.detail}",
            headers=headers or None,
        )

    @app.exception_handler(ServiceUnavailable)
    async def unavailable(request: Request, exc: ServiceUnavailable) -> JSONResponse:
        logger.warning("dependency unavailable", extra={"detail": exc.detail, "cause": exc.cause})
        return problem_response(
            request,
            503,
            "service-unavailable",
            "The service is briefly unavailable",
            exc.detail,
            headers={"Retry-After": str(exc.retry_after_seconds)},
        )

    @app.exception_handler(BotoCoreError)
    async def unreachable(request: Request, exc: BotoCoreError) -> JSONResponse:
        # No answer at all (connection refused, timed out): as retryable as an error answer.
        name = type(exc).__name__
        return await unavailable(
            request, ServiceUnavailable(f"an AWS service did not answer ({name})", cause=name)
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error")
        return problem_response(
            request, 500, "internal-error", "Internal error", "an unexpected error occurred"
        )
