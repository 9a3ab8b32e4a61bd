"""ComfyUI's binary WebSocket frames: a 4-byte big-endian event number, then the event's payload.

| event | payload after the event number |
|---|---|
| 1 PREVIEW_IMAGE | 4-byte image format (1 JPEG, 2 PNG), the image |
| 3 TEXT | 4-byte length of the node id, the node id, UTF-8 text |
| 4 PREVIEW_IMAGE_WITH_METADATA | 4-byte JSON length, JSON {node_id, prompt_id, image_type, ...}, the image |

Event 4 (which names its prompt and node) replaces event 1 once the client sent FEATURE_FLAGS as its first
frame. Images from output nodes (``SaveImageWebsocket``) are job outputs; from other nodes, live previews.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

PREVIEW_IMAGE = 1
TEXT = 3
PREVIEW_IMAGE_WITH_METADATA = 4
FEATURE_FLAGS = {"type": "feature_flags", "data": {"supports_preview_metadata": True}}
_IMAGE_FORMATS = {1: "image/jpeg", 2: "image/png"}


@dataclass(frozen=True)
class SentImage:
    """An image ComfyUI sent over the socket; prompt_id and node_id are None for event 1."""

    prompt_id: str | None
    node_id: str | None
    content_type: str
    data: bytes


@dataclass(frozen=True)
class SentText:
    node_id: str
    text: str


class MalformedFrame(ValueError):
    pass


def decode(frame: bytes) -> SentImage | SentText | None:
    """The frame's content; None for an event this runner does not use."""
    try:
        (event,) = struct.unpack(">I", frame[:4])
        rest = frame[4:]
        if event == PREVIEW_IMAGE_WITH_METADATA:
            (size,) = struct.unpack(">I", rest[:4])
            metadata: dict[str, Any] = json.loads(rest[4 : 4 + size])
            content_type = str(metadata.get("image_type") or "image/png")
            node_id = metadata.get("node_id")
            prompt_id = metadata.get("prompt_id")
            return SentImage(
                str(prompt_id) if prompt_id is not None else None,
                str(node_id) if node_id is not None else None,
                content_type,
                rest[4 + size :],
            )
        if event == PREVIEW_IMAGE:
            (image_format,) = struct.unpack(">I", rest[:4])
            return SentImage(None, None, _IMAGE_FORMATS.get(image_format, "image/png"), rest[4:])
        if event == TEXT:
            (size,) = struct.unpack(">I", rest[:4])
            return SentText(rest[4 : 4 + size].decode(), rest[4 + size :].decode(errors="replace"))
    except (struct.error, ValueError, AttributeError) as error:
        raise MalformedFrame(str(error)) from error
    return None
