"""Binary WebSocket frames: a 4-byte big-endian event number, then an event-specific payload."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

PREVIEW_IMAGE = 1
TEXT = 3
PREVIEW_IMAGE_WITH_METADATA = 4

IMAGE_FORMAT_JPEG = 1
IMAGE_FORMAT_PNG = 2


def preview_image(image_bytes: bytes, image_format: int = IMAGE_FORMAT_PNG) -> bytes:
    return struct.pack(">II", PREVIEW_IMAGE, image_format) + image_bytes


def preview_image_with_metadata(image_bytes: bytes, metadata: dict[str, Any]) -> bytes:
    header = json.dumps(metadata).encode("utf-8")
    return struct.pack(">II", PREVIEW_IMAGE_WITH_METADATA, len(header)) + header + image_bytes


def text(node_id: str, message: str) -> bytes:
    node = node_id.encode("utf-8")
    return struct.pack(">II", TEXT, len(node)) + node + message.encode("utf-8")


@dataclass(frozen=True)
class BinaryFrame:
    """A decoded binary frame; fields that an event does not carry stay None."""

    event: int
    image_format: int | None = None
    metadata: dict[str, Any] | None = None
    node_id: str | None = None
    text: str | None = None
    payload: bytes = b""


def decode(frame: bytes) -> BinaryFrame:
    """Parse a binary frame as a client would; unknown events keep their raw payload."""
    (event,) = struct.unpack(">I", frame[:4])
    rest = frame[4:]
    if event == PREVIEW_IMAGE:
        (image_format,) = struct.unpack(">I", rest[:4])
        return BinaryFrame(event, image_format=image_format, payload=rest[4:])
    if event == PREVIEW_IMAGE_WITH_METADATA:
        (size,) = struct.unpack(">I", rest[:4])
        metadata = json.loads(rest[4 : 4 + size].decode("utf-8"))
        return BinaryFrame(event, metadata=metadata, payload=rest[4 + size :])
    if event == TEXT:
        (size,) = struct.unpack(">I", rest[:4])
        node_id = rest[4 : 4 + size].decode("utf-8")
        return BinaryFrame(event, node_id=node_id, text=rest[4 + size :].decode("utf-8"))
    return BinaryFrame(event, payload=rest)
