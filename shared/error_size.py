"""Keeps every stored job error small: a DynamoDB item holds 400 KB, and an error echoes what it was given.

ComfyUI's refusals repeat the values they refused (``extra_info.received_value``), so one long string in a
workflow can make an error record of any size. A stored error keeps its code, node and type; its message
and details are cut to a few KB, with ``details.truncated`` saying that something was left out.
"""

from __future__ import annotations

import json
from typing import Any

from shared.models import JobError

MAX_MESSAGE_CHARS = 1000
MAX_DETAILS_BYTES = 4096
MAX_STRING_CHARS = 240
MAX_ITEMS = 20


def cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit} more characters cut]"


def _shrunk(value: Any) -> Any:
    """The same shape, with long strings, lists and objects cut short."""
    if isinstance(value, str):
        return cut(value, MAX_STRING_CHARS)
    if isinstance(value, list):
        kept = [_shrunk(item) for item in value[:MAX_ITEMS]]
        if len(value) > MAX_ITEMS:
            kept.append(f"… [{len(value) - MAX_ITEMS} more items cut]")
        return kept
    if isinstance(value, dict):
        items = list(value.items())
        shrunk = {str(key): _shrunk(item) for key, item in items[:MAX_ITEMS]}
        if len(items) > MAX_ITEMS:
            shrunk["…"] = f"{len(items) - MAX_ITEMS} more keys cut"
        return shrunk
    return value


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), default=str).encode())


def bounded(error: JobError) -> JobError:
    """``error`` as it may be stored: at most about MAX_MESSAGE_CHARS + MAX_DETAILS_BYTES."""
    message = cut(error.message, MAX_MESSAGE_CHARS)
    details = error.details
    if details is not None and _size(details) > MAX_DETAILS_BYTES:
        details = {**_shrunk(details), "truncated": True}
        if _size(details) > MAX_DETAILS_BYTES:
            text = json.dumps(details, separators=(",", ":"), default=str)
            details = {"truncated": True, "excerpt": text[: MAX_DETAILS_BYTES // 2]}
    if message == error.message and details is error.details:
        return error
    return error.model_copy(update={"message": message, "details": details})
