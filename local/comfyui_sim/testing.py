"""Test helpers: a recording WebSocket client and the recorded transcripts in a comparable form.

Frames from the simulator and from a transcript are turned into "shapes": the frame type, the data keys
in order and the values that must agree between runs (node ids, queue sizes, progress values), leaving
out ids, timestamps and byte sizes.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import websocket

from . import binary

PROTOCOL_DIR = Path(__file__).parent / "protocol"
Frame = dict[str, Any]
_IMAGE_FORMATS = {binary.IMAGE_FORMAT_JPEG: "JPEG", binary.IMAGE_FORMAT_PNG: "PNG"}


def load_transcript(scenario: str) -> list[dict[str, Any]]:
    path = PROTOCOL_DIR / "transcripts" / f"transcript-{scenario}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def load_workflow(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PROTOCOL_DIR / "workflows" / f"{name}.json").read_text())
    return data


def http_records(records: list[dict[str, Any]], method: str, path: str) -> list[dict[str, Any]]:
    """HTTP exchanges in the order they were made; ``path`` matches the start of the recorded path."""
    found = [
        r for r in records if r["kind"] == "http" and r["method"] == method and r["path"].startswith(path)
    ]
    return found


def transcript_frames(records: list[dict[str, Any]], sock: str) -> list[Frame]:
    """Frames one recorded socket received, in arrival order."""
    received = [r for r in records if r.get("sock") == sock and r["kind"] in ("ws_text", "ws_binary")]
    frames: list[Frame] = []
    for record in sorted(received, key=lambda r: r["t"]):
        if record["kind"] == "ws_text":
            message = json.loads(record["raw"])
            frames.append({"kind": "text", "type": message["type"], "data": message["data"]})
            continue
        metadata = json.loads(record["metadata_raw"]) if "metadata_raw" in record else None
        frames.append(
            {
                "kind": "binary",
                "event": record["event"],
                "image_format": record.get("image_format"),
                "metadata": metadata,
                "node_id": record.get("node_id"),
                "text": record.get("text"),
            }
        )
    return frames


def frame_from_wire(payload: str | bytes) -> Frame:
    if isinstance(payload, str):
        message = json.loads(payload)
        return {"kind": "text", "type": message["type"], "data": message["data"]}
    decoded = binary.decode(payload)
    return {
        "kind": "binary",
        "event": decoded.event,
        "image_format": _IMAGE_FORMATS.get(decoded.image_format or 0),
        "metadata": decoded.metadata,
        "node_id": decoded.node_id,
        "text": decoded.text,
        "payload": decoded.payload,
    }


def _filename(name: str) -> str:
    name = re.sub(r"_temp_[a-z]{5}_", "_temp_xxxxx_", name)
    return re.sub(r"_\d{5}_\.png$", "_NNNNN_.png", name)


def _output(output: Any) -> Any:
    if not isinstance(output, dict):
        return output
    normalized = dict(output)
    if "images" in normalized:
        normalized["images"] = [
            {"filename": _filename(i["filename"]), "subfolder": i["subfolder"], "type": i["type"]}
            for i in normalized["images"]
        ]
    return json.dumps(normalized, sort_keys=True)


def shape(frame: Frame) -> tuple[Any, ...]:
    """What must agree between a recorded frame and a simulated one."""
    if frame["kind"] == "binary":
        event = frame["event"]
        if event == binary.PREVIEW_IMAGE:
            return ("binary", event, frame["image_format"])
        if event == binary.PREVIEW_IMAGE_WITH_METADATA:
            metadata = frame["metadata"] or {}
            return ("binary", event, tuple(metadata), metadata.get("node_id"), metadata.get("image_type"))
        return ("binary", event, frame["node_id"], frame["text"])
    kind, data = frame["type"], frame["data"]
    keys = tuple(data)
    if kind == "status":
        return (kind, keys, data["status"]["exec_info"]["queue_remaining"])
    if kind == "progress_state":
        nodes = tuple(
            (node_id, tuple(e), e["state"], json.dumps(e["value"]), json.dumps(e["max"]))
            for node_id, e in data["nodes"].items()
        )
        return (kind, keys, nodes)
    if kind == "executing":
        return (kind, keys, data["node"])
    if kind == "executed":
        return (kind, keys, data["node"], _output(data["output"]))
    if kind == "progress":
        return (kind, keys, data["value"], data["max"], data["node"])
    if kind == "execution_cached":
        return (kind, keys, tuple(data["nodes"]))
    if kind == "execution_error":
        return (
            kind,
            keys,
            data["node_id"],
            data["node_type"],
            tuple(sorted(data["executed"])),
            data["exception_type"],
            data["exception_message"],
            tuple(data["current_inputs"]),
            tuple(sorted(data["current_outputs"])),
        )
    if kind == "execution_interrupted":
        return (kind, keys, data["node_id"], data["node_type"], tuple(sorted(data["executed"])))
    if kind == "feature_flags":
        return (kind, json.dumps(data, sort_keys=True))
    return (kind, keys)


def shapes(frames: list[Frame]) -> list[tuple[Any, ...]]:
    return [shape(f) for f in frames]


def is_done(frame: Frame, prompt_id: str | None = None) -> bool:
    """The completion signal: ``executing`` with node null (and the given prompt_id)."""
    if frame["kind"] != "text" or frame["type"] != "executing" or frame["data"].get("node", "") is not None:
        return False
    return prompt_id is None or frame["data"].get("prompt_id") == prompt_id


def segments(frames: list[Frame]) -> list[list[Frame]]:
    """Split frames into one list per prompt, each ending with its executing(null)."""
    out: list[list[Frame]] = [[]]
    for frame in frames:
        out[-1].append(frame)
        if is_done(frame):
            out.append([])
    return [s for s in out if s]


def prompt_ids(frames: list[Frame]) -> set[str]:
    ids: set[str] = set()
    for frame in frames:
        if frame["kind"] == "text" and isinstance(frame["data"], dict) and "prompt_id" in frame["data"]:
            ids.add(frame["data"]["prompt_id"])
        elif frame["kind"] == "binary" and frame.get("metadata"):
            ids.add(frame["metadata"]["prompt_id"])
    return ids


class RecordingSocket:
    """A client socket that records every frame on a background thread."""

    def __init__(self, ws_url: str, client_id: str | None = None, feature_flags: bool = False) -> None:
        url = ws_url if client_id is None else f"{ws_url}?clientId={client_id}"
        self.ws = websocket.create_connection(url, timeout=10)
        if feature_flags:
            self.ws.send(json.dumps({"type": "feature_flags", "data": {"supports_preview_metadata": True}}))
        self.frames: list[Frame] = []
        self.closed = False
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                opcode, data = self.ws.recv_data()
            except Exception:
                break
            if opcode == websocket.ABNF.OPCODE_TEXT:
                frame = frame_from_wire(data.decode("utf-8"))
            elif opcode == websocket.ABNF.OPCODE_BINARY:
                frame = frame_from_wire(bytes(data))
            else:
                continue
            with self._changed:
                self.frames.append(frame)
                self._changed.notify_all()
        with self._changed:
            self.closed = True
            self._changed.notify_all()

    def wait_for(self, predicate: Callable[[Frame], bool], start: int = 0, timeout: float = 10.0) -> int:
        """Index of the first frame at or after ``start`` that satisfies ``predicate``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for index in range(start, len(self.frames)):
                    if predicate(self.frames[index]):
                        return index
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.closed:
                    raise TimeoutError(f"no matching frame after {len(self.frames)} frames")
                self._changed.wait(remaining)

    def wait_done(self, prompt_id: str, start: int = 0, timeout: float = 10.0) -> int:
        return self.wait_for(lambda f: is_done(f, prompt_id), start, timeout)

    def wait_count(self, count: int, timeout: float = 10.0) -> None:
        self.wait_for(lambda f: True, start=count - 1, timeout=timeout)

    def close(self) -> None:
        self.ws.close()
        self._reader.join(timeout=5)
