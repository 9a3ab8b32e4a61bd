"""Follows one prompt's frames to its end, as the protocol transcripts show it ends.

The end is ``executing`` with ``node: null`` and our prompt id; the outcome is the one
``execution_success`` / ``execution_error`` / ``execution_interrupted`` seen before it. When frames are
lost (the socket dropped) or never come (the prompt was deleted from ComfyUI's queue), ``/history``
and ``/queue`` say what happened.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from gpu_runner.comfy import DISCONNECTED, RECONNECTED, SENT_IMAGE, ComfyClient, ComfyUnavailable, Frame
from gpu_runner.comfy_binary import SentImage

POLL_SECONDS = 0.25
# After an interrupt or a queue delete, how long to wait for frames before asking ComfyUI directly.
GONE_CHECK_SECONDS = 2.0
RECONNECT_GRACE_SECONDS = 30.0


class OutcomeKind(StrEnum):
    SUCCESS = "success"
    ERROR = "error"
    INTERRUPTED = "interrupted"
    # Deleted from ComfyUI's queue before it started: no frame and no history, ever.
    NEVER_RAN = "never_ran"


@dataclass
class PromptOutcome:
    kind: OutcomeKind
    error: dict[str, Any] | None = None
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    started_ms: int | None = None
    finished_ms: int | None = None
    # Images sent over the socket (SaveImageWebsocket's outputs, previews): in no history entry.
    sent_images: list[SentImage] = field(default_factory=list)
    # The socket dropped while the prompt ran: frames, and so sent images, may be missing.
    frames_lost: bool = False


class ComfyHung(ComfyUnavailable):
    """ComfyUI stayed silent longer than allowed while running our prompt."""


class PromptObserver(Protocol):
    async def started(self, timestamp_ms: int | None) -> None: ...
    async def cached(self, nodes: list[str]) -> None: ...
    async def executing(self, node_id: str) -> None: ...
    async def progress(self, node_id: str, value: float, maximum: float) -> None: ...
    async def executed(self, node_id: str) -> None: ...
    async def sent_image(self, image: SentImage) -> bool:
        """True when the image is taken as a live preview, False when it may be an output."""
        ...


@dataclass
class StopRequest:
    """Why the runner wants the prompt stopped; set by the heartbeat or the deadline."""

    reason: str | None = None

    def set(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason


def outcome_from_history(entry: dict[str, Any]) -> PromptOutcome:
    status = entry.get("status") or {}
    kind, error, started, finished = OutcomeKind.ERROR, None, None, None
    for event, data in status.get("messages") or []:
        if event == "execution_start":
            started = data.get("timestamp")
        elif event == "execution_success":
            kind, finished = OutcomeKind.SUCCESS, data.get("timestamp")
        elif event == "execution_error":
            kind, error, finished = OutcomeKind.ERROR, data, data.get("timestamp")
        elif event == "execution_interrupted":
            kind, error, finished = OutcomeKind.INTERRUPTED, data, data.get("timestamp")
    if kind is OutcomeKind.ERROR and error is None and status.get("status_str") == "success":
        kind = OutcomeKind.SUCCESS
    return PromptOutcome(kind, error, dict(entry.get("outputs") or {}), started, finished)


class PromptFollower:
    def __init__(
        self,
        client: ComfyClient,
        prompt_id: str,
        frames: asyncio.Queue[Frame],
        observer: PromptObserver,
        stop: StopRequest,
        silence_seconds: float,
    ) -> None:
        self._client = client
        self._prompt_id = prompt_id
        self._frames = frames
        self._observer = observer
        self._stop = stop
        self._silence = silence_seconds
        self._result: PromptOutcome | None = None
        self._outputs: dict[str, dict[str, Any]] = {}
        self._sent_images: list[SentImage] = []
        self._frames_lost = False
        self._started_ms: int | None = None
        self._stop_sent = False
        self._check_at: float | None = None
        self._disconnected_at: float | None = None

    async def run(self) -> PromptOutcome:
        last_frame = time.monotonic()
        while True:
            try:
                frame = await asyncio.wait_for(self._frames.get(), POLL_SECONDS)
            except TimeoutError:
                frame = None
            now = time.monotonic()
            if frame is not None:
                last_frame = now
                done = await self._handle(frame)
                if done is not None:
                    return done
            await self._apply_stop_request(now)
            if self._check_at is not None and now >= self._check_at:
                found = await self._ask_comfyui()
                if found is not None:
                    return found
            if self._disconnected_at is not None and now - self._disconnected_at > RECONNECT_GRACE_SECONDS:
                raise ComfyUnavailable("the ComfyUI socket did not come back")
            if self._started_ms is not None and now - last_frame > self._silence:
                raise ComfyHung(f"no frame from ComfyUI for {self._silence:.0f} s")
            if self._started_ms is None and now - last_frame > self._silence:
                # Not started yet: still waiting in ComfyUI's queue is fine, vanishing is not.
                last_frame = now
                found = await self._ask_comfyui()
                if found is not None:
                    return found

    async def _apply_stop_request(self, now: float) -> None:
        if self._stop.reason is None or self._stop_sent:
            return
        self._stop_sent = True
        # Delete first: a prompt still pending must never start; interrupt covers a running one.
        await self._client.delete_queued(self._prompt_id)
        await self._client.interrupt(self._prompt_id)
        self._check_at = now + GONE_CHECK_SECONDS

    async def _ask_comfyui(self) -> PromptOutcome | None:
        """Frames may be lost; decide from /history and /queue. None: still queued or running."""
        self._check_at = time.monotonic() + GONE_CHECK_SECONDS if self._stop_sent else None
        entry = await self._client.history(self._prompt_id)
        if entry is not None:
            return outcome_from_history(entry)
        running, pending = await self._client.queue_ids()
        if self._prompt_id in running or self._prompt_id in pending:
            return None
        # History is written before the final frame; check again in case it finished just now.
        entry = await self._client.history(self._prompt_id)
        if entry is not None:
            return outcome_from_history(entry)
        return PromptOutcome(OutcomeKind.NEVER_RAN, started_ms=self._started_ms)

    async def _handle(self, frame: Frame) -> PromptOutcome | None:
        data = frame.data
        if frame.type == DISCONNECTED:
            self._disconnected_at = time.monotonic()
            self._frames_lost = True
        elif frame.type == RECONNECTED:
            # A new socket while we listen: frames before it were lost, even if the prompt was submitted
            # while the old one was already gone (and no DISCONNECTED reached us).
            self._disconnected_at = None
            self._frames_lost = True
            # It may be a restarted ComfyUI: let the runner read its node types before we conclude.
            await self._client.settled()
            found = await self._ask_comfyui()
            if found is not None:
                found.sent_images, found.frames_lost = self._sent_images, True
            return found
        elif frame.type == SENT_IMAGE:
            # Previews stream at the sampler's pace: only output nodes' images are kept until the end.
            if not await self._observer.sent_image(data["image"]):
                self._sent_images.append(data["image"])
        elif frame.type == "execution_start":
            self._started_ms = data.get("timestamp") or int(time.time() * 1000)
            await self._observer.started(data.get("timestamp"))
        elif frame.type == "execution_cached":
            await self._observer.cached([str(n) for n in data.get("nodes") or []])
        elif frame.type == "executing":
            node = data.get("node")
            if node is None:
                return self._finish()
            await self._observer.executing(str(node))
        elif frame.type == "progress":
            await self._observer.progress(str(data.get("node")), float(data["value"]), float(data["max"]))
        elif frame.type == "executed":
            self._outputs[str(data.get("node"))] = dict(data.get("output") or {})
            await self._observer.executed(str(data.get("node")))
        elif frame.type == "execution_success":
            self._result = PromptOutcome(OutcomeKind.SUCCESS, finished_ms=data.get("timestamp"))
        elif frame.type == "execution_error":
            self._result = PromptOutcome(OutcomeKind.ERROR, error=data, finished_ms=data.get("timestamp"))
        elif frame.type == "execution_interrupted":
            self._result = PromptOutcome(
                OutcomeKind.INTERRUPTED, error=data, finished_ms=data.get("timestamp")
            )
        return None

    def _finish(self) -> PromptOutcome:
        result = self._result or PromptOutcome(
            OutcomeKind.ERROR, error={"exception_message": "no outcome frame"}
        )
        result.outputs = self._outputs
        result.started_ms = self._started_ms
        result.sent_images = self._sent_images
        result.frames_lost = self._frames_lost
        return result
