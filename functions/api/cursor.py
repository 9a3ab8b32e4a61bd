"""Opaque list cursors: where a listing resumes, bound to its owner and filter and signed, so a cursor
can neither be forged nor replayed by another API key to read someone else's jobs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from shared.errors import FieldError, InvalidRequest


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


def decode_cursor(secret: str, owner: str, status: str | None, cursor: str) -> dict[str, Any]:
    invalid = InvalidRequest(
        "The cursor is not one this API gave you for this listing; start again without one.",
        [FieldError("query:cursor", "invalid, tampered with, or from another key or filter")],
    )
    payload, _, signature = cursor.partition(".")
    if not hmac.compare_digest(_sign(secret, payload), signature):
        raise invalid
    try:
        decoded = json.loads(base64.urlsafe_b64decode(payload.encode()))
        key = decoded["k"]
    except (ValueError, KeyError, TypeError):
        raise invalid from None
    if decoded.get("o") != owner or decoded.get("s") != status or not isinstance(key, dict):
        raise invalid
    return key
