"""Domain errors. The API maps each to one HTTP problem document in one place."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FieldError:
    """One thing wrong with a request, and where: a JSON pointer into the request body."""

    pointer: str
    message: str
    node_id: str | None = None
    input: str | None = None
    # For a name that is not known: the known names nearest to it, best first.
    closest: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"pointer": self.pointer, "detail": self.message}
        if self.node_id is not None:
            out["node_id"] = self.node_id
        if self.input is not None:
            out["input"] = self.input
        if self.closest:
            out["closest"] = list(self.closest)
        return out


class DomainError(Exception):
    """Base of the errors a caller can cause; ``status`` is the HTTP status they map to."""

    status = 400
    title = "Bad request"
    type_slug = "bad-request"

    def __init__(self, detail: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []

    @property
    def headers(self) -> dict[str, str] | None:
        return None


class InvalidRequest(DomainError):
    status = 422
    title = "The request is not valid"
    type_slug = "invalid-request"


class InvalidWorkflow(InvalidRequest):
    title = "The workflow is not a valid ComfyUI API-format graph"
    type_slug = "invalid-workflow"


class PayloadTooLarge(DomainError):
    status = 413
    title = "The request is too large"
    type_slug = "payload-too-large"


class JobNotFound(DomainError):
    status = 404
    title = "No such job"
    type_slug = "job-not-found"


class IdempotencyKeyReused(DomainError):
    status = 422
    title = "This Idempotency-Key was already used with a different request"
    type_slug = "idempotency-key-reused"


class JobAlreadyFinished(DomainError):
    status = 409
    title = "The job has already finished"
    type_slug = "job-already-finished"


class TooManyJobsInFlight(DomainError):
    """The tenant's tier allows this many jobs queued and running at once; one must end first."""

    status = 429
    title = "Too many jobs in flight for this tier"
    type_slug = "too-many-jobs-in-flight"

    def __init__(self, detail: str, retry_after_seconds: int) -> None:
        super().__init__(detail)
        self.retry_after_seconds = retry_after_seconds

    @property
    def headers(self) -> dict[str, str] | None:
        return {"Retry-After": str(self.retry_after_seconds)}


@dataclass
class ServiceUnavailable(Exception):
    """A dependency failed in a way the caller can retry (never the caller's fault)."""

    detail: str
    retry_after_seconds: int = 1
    cause: str | None = field(default=None)
