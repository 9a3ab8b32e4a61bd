"""Opaque list cursors: where a listing resumes, bound to its owner and filter and signed, so a cursor
can neither be forged nor replayed by another tenant to read someone else's jobs.

Decoding is total: any string that is not a cursor this API made for this listing, with the current or
the previous signing secret, is the same 422 naming the ``cursor`` parameter, never another error.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Sequence
from typing import Any

from shared.errors import FieldError, InvalidRequest

# The listing route refuses longer cursors before they reach the decoder; checked here too so the
# decoder's guarantee does not depend on its caller.
MAX_CURSOR_CHARS = 2048


class InvalidCursor(InvalidRequest):
    def __init__(self) -> None:
        super().__init__(
            "The cursor is not one this API gave you for this listing; start again without one.",
            [FieldError("query:cursor", "invalid, tampered with, or from another key or filter")],
        )


def _key(secret: str) -> bytes:
    # A key of its own, derived so that a cursor can never pass for a WebSocket token or the reverse.
    return hashlib.sha256(b"list-cursor\0" + secret.encode()).digest()


def _sign(secret: str, payload: str) -> str:
    return hmac.new(_key(secret), payload.encode(), hashlib.sha256).hexdigest()[:32]


def encode_cursor(secret: str, owner: str, status: str | None, start_key: dict[str, Any]) -> str:
    payload = base64.urlsafe_b64encode(
        json.dumps({"o": owner, "s": status, "k": start_key}, separators=(",", ":")).encode()
    ).decode()
    return f"{payload}.{_sign(secret, payload)}"


def decode_cursor(accepted: Sequence[str], owner: str, status: str | None, cursor: str) -> dict[str, Any]:
    """The start key of a cursor signed with any of the ``accepted`` secrets (current and previous)."""
    if not cursor.isascii() or len(cursor) > MAX_CURSOR_CHARS:
        raise InvalidCursor()
    payload, _, signature = cursor.partition(".")
    # Every secret is tried, so how long this takes does not tell which one matched.
    matches = [hmac.compare_digest(_sign(secret, payload), signature) for secret in accepted]
    if not any(matches):
        raise InvalidCursor()
    try:
        decoded = json.loads(base64.urlsafe_b64decode(payload.encode()))
        key = decoded["k"]
        belongs = decoded.get("o") == owner and decoded.get("s") == status
    except (ValueError, KeyError, TypeError, AttributeError):
        raise InvalidCursor() from None
    if not belongs or not isinstance(key, dict):
        raise InvalidCursor()
    return key
