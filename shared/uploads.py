"""Input uploads: a workflow input or template param names an uploaded file as ``upload://<upload_id>``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

UPLOAD_SCHEME = "upload://"
_UPLOAD_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
# What ComfyUI's LoadImage (and the video and audio loaders) read.
UPLOAD_CONTENT_TYPES = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "video/mp4": ".mp4",
    "video/webm": ".webm",
    "audio/wav": ".wav",
    "audio/mpeg": ".mp3",
    "audio/flac": ".flac",
}


def upload_id_of(value: Any) -> str | None:
    """The upload id a value refers to, or None when it is not a well-formed upload reference."""
    if not isinstance(value, str) or not value.startswith(UPLOAD_SCHEME):
        return None
    upload_id = value.removeprefix(UPLOAD_SCHEME)
    return upload_id if _UPLOAD_ID.match(upload_id) else None


def upload_references(workflow: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """Every (node_id, input_name, value) whose value starts with ``upload://``."""
    for node_id, node in workflow.items():
        if not isinstance(node, dict):
            continue
        for name, value in (node.get("inputs") or {}).items():
            if isinstance(value, str) and value.startswith(UPLOAD_SCHEME):
                yield node_id, name, value
