"""Typed views of the API's JSON: jobs, outputs, templates, uploads and WebSocket events."""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

TERMINAL = frozenset({"succeeded", "failed", "canceled", "expired"})


def parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    # Python 3.10's fromisoformat does not take a trailing "Z".
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


@dataclass(frozen=True)
class Output:
    node_id: str
    filename: str
    content_type: str
    size: int
    kind: str
    url: str

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Output:
        return cls(
            node_id=str(data["node_id"]),
            filename=str(data["filename"]),
            content_type=str(data.get("content_type", "application/octet-stream")),
            size=int(data.get("size", 0)),
            kind=str(data.get("kind", "output")),
            url=str(data["url"]),
        )


@dataclass(frozen=True)
class JobError:
    code: str
    message: str
    node_id: str | None = None
    node_type: str | None = None
    details: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> JobError | None:
        if not data:
            return None
        return cls(
            code=str(data.get("code", "")),
            message=str(data.get("message", "")),
            node_id=data.get("node_id"),
            node_type=data.get("node_type"),
            details=data.get("details"),
        )

    def __str__(self) -> str:
        where = f" at node {self.node_id}" + (f" ({self.node_type})" if self.node_type else "")
        return f"{self.code}: {self.message}" + (where if self.node_id else "")


@dataclass(frozen=True)
class Job:
    job_id: str
    status: str
    created_at: datetime | None
    updated_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    deadline: datetime | None
    attempts: int
    progress: float
    cancel_requested: bool
    error: JobError | None
    outputs: list[Output]
    metadata: dict[str, Any] | None
    raw: dict[str, Any] = field(repr=False, compare=False)
    # Where the job's time went, in ms: queued_ms, models_ms, execution_ms, upload_ms (None: not reached).
    timings: dict[str, int | None] = field(default_factory=dict, compare=False)
    # The seq of its latest state change (0 while queued as submitted): watch(after=seq) goes on from it.
    seq: int | None = field(default=None, compare=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        return cls(
            job_id=str(data["job_id"]),
            status=str(data["status"]),
            created_at=parse_time(data.get("created_at")),
            updated_at=parse_time(data.get("updated_at")),
            started_at=parse_time(data.get("started_at")),
            finished_at=parse_time(data.get("finished_at")),
            deadline=parse_time(data.get("deadline")),
            attempts=int(data.get("attempts", 0)),
            progress=float(data.get("progress", 0.0)),
            cancel_requested=bool(data.get("cancel_requested", False)),
            error=JobError.from_dict(data.get("error")),
            outputs=[Output.from_dict(o) for o in data.get("outputs") or []],
            metadata=data.get("metadata"),
            raw=dict(data),
            timings=dict(data.get("timings") or {}),
            seq=_seq(data),
        )

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL


@dataclass(frozen=True)
class Model:
    """One model of the service's library: name it in a loader input of its folder."""

    folder: str
    name: str
    size: int
    sha256: str | None
    updated_at: datetime | None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Model:
        return cls(
            folder=str(data["folder"]),
            name=str(data["name"]),
            size=int(data.get("size", 0)),
            sha256=data.get("sha256"),
            updated_at=parse_time(data.get("updated_at")),
        )


@dataclass(frozen=True)
class Template:
    name: str
    description: str
    parameters: dict[str, Any]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Template:
        return cls(
            name=str(data["name"]),
            description=str(data.get("description") or ""),
            parameters=dict(data.get("parameters") or {}),
        )


@dataclass(frozen=True)
class Upload:
    upload_id: str
    ref: str
    url: str
    method: str
    fields: dict[str, str]
    max_bytes: int | None
    expires_at: datetime | None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Upload:
        return cls(
            upload_id=str(data["upload_id"]),
            ref=str(data.get("ref") or f"upload://{data['upload_id']}"),
            url=str(data["url"]),
            method=str(data.get("method") or "POST"),
            fields={str(k): str(v) for k, v in (data.get("fields") or {}).items()},
            max_bytes=int(data["max_bytes"]) if data.get("max_bytes") is not None else None,
            expires_at=parse_time(data.get("expires_at")),
        )


@dataclass(frozen=True)
class Snapshot:
    """The job's whole state, sent after a subscription; ``seq`` is the newest event it reflects."""

    job: Job
    seq: int | None = None


@dataclass(frozen=True)
class Progress:
    job_id: str
    node_id: str
    node_type: str | None
    value: float
    max: float
    percent: float
    ts: int | None = None
    seq: int | None = None


@dataclass(frozen=True)
class StatusChange:
    """A state change; a terminal one carries ``outputs`` or ``error``."""

    job_id: str
    status: str
    ts: int | None = None
    outputs: list[Output] = field(default_factory=list)
    error: JobError | None = None
    seq: int | None = None
    # The whole job, on a terminal change from a server that sends it.
    job: Job | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL


@dataclass(frozen=True)
class ErrorEvent:
    """The server refused a client message (``not_found``, ``unknown_action``, ...)."""

    code: str
    message: str


@dataclass(frozen=True)
class Preview:
    """A live preview of the image a node is making (watch with ``previews=True``); ``image`` is a JPEG,
    or None for a preview replayed from the job's log, which keeps only what it was."""

    job_id: str
    node_id: str | None
    value: float | None
    max: float | None
    content_type: str
    width: int
    height: int
    image: bytes | None
    ts: int | None = None
    seq: int | None = None

    def save(self, directory: str | os.PathLike[str]) -> Path | None:
        """Writes the JPEG as ``<job_id>-<seq>.jpg`` in ``directory``; None when it carries no image."""
        if self.image is None:
            return None
        target = Path(directory)
        target.mkdir(parents=True, exist_ok=True)
        path = target / f"{self.job_id}-{self.seq if self.seq is not None else self.ts or 0}.jpg"
        path.write_bytes(self.image)
        return path


@dataclass(frozen=True)
class Replayed:
    """Ends the replay of what a resumed subscription missed: live events follow."""

    through: int


Event = Snapshot | Progress | StatusChange | Preview | ErrorEvent


def _seq(frame: dict[str, Any]) -> int | None:
    seq = frame.get("seq")
    return int(seq) if isinstance(seq, int) else None


def _image(data: Any) -> bytes | None:
    if not isinstance(data, str):
        return None
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None


def parse_event(frame: dict[str, Any]) -> Event | Replayed | None:
    """A typed event, or None for frames a watcher need not see (``pong``, types added later)."""
    kind = frame.get("type")
    if kind == "job.snapshot":
        return Snapshot(Job.from_dict(frame["job"]), _seq(frame))
    if kind == "job.replayed":
        return Replayed(int(frame.get("through") or 0))
    if kind == "job.preview":
        return Preview(
            job_id=str(frame["job_id"]),
            node_id=frame.get("node_id"),
            value=frame.get("value"),
            max=frame.get("max"),
            content_type=str(frame.get("content_type") or "image/jpeg"),
            width=int(frame.get("width") or 0),
            height=int(frame.get("height") or 0),
            image=_image(frame.get("data")),
            ts=frame.get("ts"),
            seq=_seq(frame),
        )
    if kind == "job.progress":
        return Progress(
            job_id=str(frame["job_id"]),
            node_id=str(frame.get("node_id", "")),
            node_type=frame.get("node_type"),
            value=float(frame.get("value", 0)),
            max=float(frame.get("max", 0)),
            percent=float(frame.get("percent", 0)),
            ts=frame.get("ts"),
            seq=_seq(frame),
        )
    if kind == "job.status":
        return StatusChange(
            job_id=str(frame["job_id"]),
            status=str(frame["status"]),
            ts=frame.get("ts"),
            outputs=[Output.from_dict(o) for o in frame.get("outputs") or []],
            error=JobError.from_dict(frame.get("error")),
            seq=_seq(frame),
            job=Job.from_dict(frame["job"]) if isinstance(frame.get("job"), dict) else None,
        )
    if kind == "error":
        return ErrorEvent(code=str(frame.get("code", "")), message=str(frame.get("message", "")))
    return None
