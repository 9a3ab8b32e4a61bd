"""Short-lived WebSocket tokens: ``<payload>.<signature>``, HMAC-SHA256 over the owner and the expiry.

The REST API issues one to an API key's owner; the WebSocket ``$connect`` authorizer checks it, so a
browser can connect without ever holding the API key. Verification is total: whatever string arrives,
the answer is claims or :class:`InvalidToken`, never another exception.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

# Far above any token issue_token makes (about 150 characters), far below what could cost work to check.
MAX_TOKEN_CHARS = 1024


class InvalidToken(Exception):
    """Why a token was refused: malformed, tampered with, expired."""


@dataclass(frozen=True)
class TokenClaims:
    owner: str
    expires_at: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode(), payload.encode("ascii"), hashlib.sha256).digest())


def issue_token(secret: str, owner: str, now_s: int, ttl_seconds: int) -> tuple[str, int]:
    if not secret:
        raise ValueError("no WebSocket token secret is configured")
    expires_at = now_s + ttl_seconds
    claims = {"sub": owner, "exp": expires_at, "nonce": secrets.token_urlsafe(8)}
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    return f"{payload}.{_sign(secret, payload)}", expires_at


def verify_token(accepted: Sequence[str], token: str, now_s: int) -> TokenClaims:
    """The claims of a token signed with any of the ``accepted`` secrets (current and previous)."""
    if not accepted:
        raise InvalidToken("no WebSocket token secret is configured")
    if not token.isascii() or len(token) > MAX_TOKEN_CHARS:
        raise InvalidToken("malformed token")
    payload, dot, signature = token.partition(".")
    if not dot or not payload or not signature:
        raise InvalidToken("malformed token")
    # Every secret is tried, so how long this takes does not tell which one matched.
    matches = [hmac.compare_digest(_sign(secret, payload), signature) for secret in accepted]
    if not any(matches):
        raise InvalidToken("bad signature")
    try:
        claims = json.loads(_unb64(payload))
        owner, expires_at = str(claims["sub"]), int(claims["exp"])
    except (ValueError, KeyError, TypeError, OverflowError) as error:
        raise InvalidToken("malformed claims") from error
    if expires_at < now_s:
        raise InvalidToken("expired")
    return TokenClaims(owner, expires_at)
