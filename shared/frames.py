"""The JSON frames the WebSocket API sends to clients (DESIGN.md section 4)."""

from __future__ import annotations

import time
from typing import Any

from shared.models import Job
from shared.views import JobView


def _ts() -> int:
    return int(time.time() * 1000)


def snapshot(view: JobView, seq: int | None = None) -> dict[str, Any]:
    """The job as it is; ``seq`` is the newest event it already reflects (resume after it)."""
    frame = {"type": "job.snapshot", "job": view.model_dump(mode="json"), "ts": _ts()}
    if seq is not None:
        frame["seq"] = seq
    return frame


def numbered(frame: dict[str, Any], seq: int | None) -> dict[str, Any]:
    """The frame with its event number (shared/events.py), when it has one."""
    if seq is not None:
        frame["seq"] = seq
    return frame


def preview(
    job_id: str,
    node_id: str | None,
    value: float | None,
    maximum: float | None,
    *,
    content_type: str,
    width: int,
    height: int,
    size: int,
    data: str | None = None,
) -> dict[str, Any]:
    """A live preview, the JPEG inline as base64 ``data`` (gpu_runner/previews.py); a log keeps no data."""
    frame: dict[str, Any] = {
        "type": "job.preview",
        "job_id": job_id,
        "node_id": node_id,
        "value": value,
        "max": maximum,
        "content_type": content_type,
        "width": width,
        "height": height,
        "size": size,
        "ts": _ts(),
    }
    if data is not None:
        frame["data"] = data
    return frame


def replayed(job_id: str, through: int) -> dict[str, Any]:
    """Ends a replay (subscribe with ``after``): live frames follow; ``through`` is the last one replayed."""
    return {"type": "job.replayed", "job_id": job_id, "through": through, "ts": _ts()}


def status(job: Job, view: JobView | None = None) -> dict[str, Any]:
    """A state change; a terminal one carries the outputs (with URLs) or the error, and the whole job as
    ``GET /v1/jobs/{id}`` shows it, so a client that followed the job needs no read at the end."""
    frame: dict[str, Any] = {
        "type": "job.status",
        "job_id": job.job_id,
        "status": job.status.value,
        "ts": _ts(),
    }
    if job.status.is_terminal and view is not None:
        frame["outputs"] = [o.model_dump(mode="json") for o in view.outputs]
        frame["error"] = view.error.model_dump(mode="json") if view.error else None
        frame["job"] = view.model_dump(mode="json")
    return frame


def progress(
    job_id: str, node_id: str, node_type: str | None, value: float, maximum: float, percent: float
) -> dict[str, Any]:
    return {
        "type": "job.progress",
        "job_id": job_id,
        "node_id": node_id,
        "node_type": node_type,
        "value": value,
        "max": maximum,
        "percent": percent,
        "ts": _ts(),
    }


def error(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message, "ts": _ts()}


def pong() -> dict[str, Any]:
    return {"type": "pong", "ts": _ts()}
