"""Dependencies of the routes, as Annotated aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from functions.api.context import ApiContext, default_context
from functions.api.jobs_service import JobsService
from shared.errors import DomainError, FieldError, InvalidRequest


class MissingIdentity(DomainError):
    status = 401
    title = "No API key identity"
    type_slug = "unauthenticated"


class NoTenant(DomainError):
    status = 403
    title = "The API key belongs to no tenant"
    type_slug = "no-tenant"


def get_context() -> ApiContext:
    return default_context()


def get_owner(request: Request, ctx: Annotated[ApiContext, Depends(get_context)]) -> str:
    """The caller is the tenant of the API key API Gateway checked (``requestContext.identity.apiKeyId``).

    The tenant, not the key, owns jobs, uploads and WebSocket subscriptions: rotating a key orphans nothing.
    """
    event = request.scope.get("aws.event") or {}
    key_id = ((event.get("requestContext") or {}).get("identity") or {}).get("apiKeyId")
    if not key_id:
        raise MissingIdentity(
            "The request carries no API key identity; send your key in the x-api-key header."
        )
    tenant = ctx.tenants.tenant_of(str(key_id))
    if tenant is None:
        raise NoTenant("This API key belongs to no tenant, or was revoked; ask your platform team for a key.")
    return tenant


def get_jobs_service(ctx: Annotated[ApiContext, Depends(get_context)]) -> JobsService:
    return JobsService(ctx)


def idempotency_key(
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Makes a retried submission return the first answer instead of a second job "
            "(1 to 255 printable ASCII characters, scoped to your tenant, kept 24 h).",
        ),
    ] = None,
) -> str | None:
    if key is None:
        return None
    if not 1 <= len(key) <= 255 or not key.isascii() or not key.isprintable():
        raise InvalidRequest(
            "Idempotency-Key must be 1 to 255 printable ASCII characters.",
            [FieldError("header:Idempotency-Key", "must be 1 to 255 printable ASCII characters")],
        )
    return key


MAX_WAIT_SECONDS = 20


def prefer_wait(
    prefer: Annotated[
        str | None,
        Header(
            alias="Prefer",
            description="wait=N (N up to 20 seconds): answer once the job has finished or N seconds passed",
        ),
    ] = None,
    ctx: Annotated[ApiContext | None, Depends(get_context)] = None,
) -> float | None:
    """The ``wait`` preference of RFC 7240; other preferences are ignored, as the RFC allows.

    A wait longer than the deployment's bound is shortened to it (RFC 7240 lets a server honour a
    preference in part); ``Preference-Applied`` tells the client what it got.
    """
    if prefer is None:
        return None
    for part in prefer.split(","):
        name, _, value = part.strip().partition("=")
        if name.strip().lower() != "wait":
            continue
        try:
            seconds = float(value.strip().strip('"'))
        except ValueError:
            raise InvalidRequest(
                f"Prefer: wait must be a number of seconds, got {value.strip()!r}.",
                [FieldError("header:Prefer", "wait must be a number of seconds")],
            ) from None
        if not 0 <= seconds <= MAX_WAIT_SECONDS:
            raise InvalidRequest(
                f"Prefer: wait must be between 0 and {MAX_WAIT_SECONDS} seconds.",
                [FieldError("header:Prefer", f"wait must be between 0 and {MAX_WAIT_SECONDS}")],
            )
        bound = ctx.settings.prefer_wait_max_seconds if ctx is not None else MAX_WAIT_SECONDS
        return min(seconds, bound)
    return None


Context = Annotated[ApiContext, Depends(get_context)]
Owner = Annotated[str, Depends(get_owner)]
Jobs = Annotated[JobsService, Depends(get_jobs_service)]
IdempotencyKey = Annotated[str | None, Depends(idempotency_key)]
PreferWait = Annotated[float | None, Depends(prefer_wait)]
