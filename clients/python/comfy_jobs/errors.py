"""Exceptions: an HTTP error answer becomes an ``ApiError`` that carries the RFC 9457 problem document."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ComfyJobsError(Exception):
    """The base of every error this library raises."""


class ConnectionFailed(ComfyJobsError):
    """The service could not be reached, even after retries."""


class WaitTimeout(ComfyJobsError, TimeoutError):
    """A job did not reach a terminal state in the time given."""


class ApiError(ComfyJobsError):
    """The API answered with an error; ``problem`` is its problem document (RFC 9457)."""

    def __init__(self, status: int, problem: Mapping[str, Any], headers: Mapping[str, str] | None = None):
        self.status = status
        self.problem: dict[str, Any] = dict(problem)
        self.headers: dict[str, str] = dict(headers or {})
        super().__init__(str(self))

    @property
    def title(self) -> str:
        return str(self.problem.get("title") or f"HTTP {self.status}")

    @property
    def detail(self) -> str:
        return str(self.problem.get("detail") or "")

    @property
    def errors(self) -> list[dict[str, Any]]:
        errors = self.problem.get("errors")
        return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []

    def __str__(self) -> str:
        lines = [f"{self.status} {self.title}" + (f": {self.detail}" if self.detail else "")]
        for error in self.errors:
            where = error.get("pointer") or ""
            if error.get("node_id") is not None:
                where += f" (node {error['node_id']}" + (
                    f", input {error['input']}" if error.get("input") else ""
                )
                where += ")"
            lines.append(f"  {where}: {error.get('detail', '')}".rstrip())
        return "\n".join(lines)


class InvalidRequest(ApiError):
    """400, 413, 415 or 422: the request itself is wrong; ``errors`` says where."""


class Unauthorized(ApiError):
    """401: no valid credentials."""


class Forbidden(Unauthorized):
    """403: API Gateway refused the API key (missing or unknown)."""


class NotFound(ApiError):
    """404: no such job or template, or it belongs to another API key."""


class Conflict(ApiError):
    """409: e.g. cancelling a job that has already ended."""


class RateLimited(ApiError):
    """429: too many requests; retried with backoff before it is raised."""


class ServerError(ApiError):
    """5xx: retried with backoff before it is raised."""


class ServiceUnavailable(ServerError):
    """503: a dependency is down or a feature is not configured."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: InvalidRequest,
    415: InvalidRequest,
    422: InvalidRequest,
    429: RateLimited,
    503: ServiceUnavailable,
}


def problem_from_body(status: int, body: Any, text: str = "", reason: str = "") -> dict[str, Any]:
    """A problem document from whatever the answer held: a problem, the gateway's ``{"message"}``, or text."""
    if isinstance(body, dict) and ("title" in body or "detail" in body):
        return {"status": status, **body}
    if isinstance(body, dict) and "message" in body:
        # API Gateway's own answers (a bad API key, throttling) are not problem documents.
        detail = "the API key is missing or not valid" if status == 403 else ""
        return {"title": str(body["message"]), "status": status, "detail": detail}
    return {"title": reason or f"HTTP {status}", "status": status, "detail": text.strip()[:500]}


def error_for(status: int, problem: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> ApiError:
    kind = _BY_STATUS.get(status) or (ServerError if status >= 500 else ApiError)
    return kind(status, problem, headers)
