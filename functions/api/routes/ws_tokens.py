"""/v1/ws-tokens: a short-lived token to open the WebSocket API with, so browsers never hold the API key."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

from fastapi import APIRouter
from pydantic import BaseModel, Field

from functions.api.context import ApiContext
from functions.api.deps import Context, Owner
from functions.api.problems import PROBLEM
from shared.errors import ServiceUnavailable
from shared.ws_tokens import issue_token

router = APIRouter(prefix="/v1", tags=["websocket"])

# The response header of POST /v1/jobs that carries the WebSocket URL when asked for (Prefer: websocket).
WEBSOCKET_URL_HEADER = "WebSocket-Url"


def prefers_websocket(prefer: str | None) -> bool:
    """Whether a Prefer header (RFC 7240) holds the ``websocket`` preference."""
    return any(part.split("=", 1)[0].strip().lower() == "websocket" for part in (prefer or "").split(","))


class WsToken(BaseModel):
    token: str
    expires_at: datetime
    url: str = Field(description="The WebSocket URL to connect to, with the token in its query string")


@router.post("/ws-tokens", status_code=201, response_model=WsToken, responses={503: PROBLEM})
def create_ws_token(owner: Owner, ctx: Context) -> WsToken:
    """Issue a token for the WebSocket API, bound to your tenant and valid for a few minutes.

    Connect to `url`, then send `{"action": "subscribe", "job_id": ...}` to receive `job.snapshot`,
    `job.progress` and `job.status` frames for that job.
    """
    token = websocket_token(owner, ctx)
    if token is None:
        raise ServiceUnavailable(
            "the WebSocket API is not configured for this deployment", retry_after_seconds=60
        )
    return token


def websocket_token(owner: str, ctx: ApiContext) -> WsToken | None:
    """A fresh token for ``owner``, or None when this deployment has no WebSocket API."""
    settings = ctx.settings
    secret = ctx.signing.keys().current
    if not secret or not settings.websocket_url:
        return None
    token, expires_at = issue_token(secret, owner, int(ctx.clock()), settings.ws_token_ttl_seconds)
    return WsToken(
        token=token,
        expires_at=datetime.fromtimestamp(expires_at, tz=UTC),
        url=f"{settings.websocket_url}?{urlencode({'token': token})}",
    )
