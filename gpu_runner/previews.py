"""Live previews: the latest image a sampler sent, as a small JPEG, at most about once a second per job.

ComfyUI sends a preview with each sampler step (``--preview-method auto``/``latent2rgb``/``taesd``), as a
binary frame that names its prompt and node (event 4, gpu_runner/comfy_binary.py): 10 to 50 a second on a
GPU, up to 512 px. Subscribers get the newest one when a second has passed since the last, shrunk to
``MAX_SIDE`` px on its longest side and re-encoded until it fits ``INLINE_MAX_BYTES``, so that the whole
``job.preview`` frame, base64 and all, stays within one 32 KB WebSocket billing unit.

Inline, not a short-lived S3 URL: the size can always be bounded (lower quality, then a smaller side),
and a frame that fits one billing unit costs the same message a URL would need anyway. A URL would add
an S3 PUT per preview ($5 a million), a GET per viewer, and a round trip before the image shows; it
would only pay for images that must stay large, which a progress preview need not. Nothing is made when
no subscriber of the job asked for previews (``subscribe`` with ``previews: true``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import time
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from gpu_runner.comfy_binary import SentImage
from gpu_runner.events import AttemptEvents
from gpu_runner.log import logger
from gpu_runner.notify import Guard, Notifier
from shared import frames

PREVIEW_INTERVAL_SECONDS = 1.0
MAX_SIDE = 256
# One WebSocket billing unit, less room for the frame's other fields, in base64's 3 bytes per 4.
WS_BILLING_UNIT_BYTES = 32 * 1024
FRAME_FIELDS_ALLOWANCE = 512
INLINE_MAX_BYTES = (WS_BILLING_UNIT_BYTES - FRAME_FIELDS_ALLOWANCE) // 4 * 3
QUALITIES = (80, 65, 50)
MIN_SIDE = 32


@dataclass(frozen=True)
class EncodedPreview:
    jpeg: bytes
    width: int
    height: int


class NotAnImage(ValueError):
    pass


def encode(data: bytes, max_side: int = MAX_SIDE, max_bytes: int = INLINE_MAX_BYTES) -> EncodedPreview:
    """The image as a JPEG of at most ``max_side`` px and ``max_bytes``: lower quality first, then smaller."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            original = opened.convert("RGB")
    except (UnidentifiedImageError, OSError) as error:
        raise NotAnImage(str(error)) from error
    side = max_side
    while True:
        image = original.copy()
        image.thumbnail((side, side), Image.Resampling.BILINEAR)
        for quality in QUALITIES:
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=quality, optimize=True)
            if buffer.tell() <= max_bytes or (side <= MIN_SIDE and quality == QUALITIES[-1]):
                return EncodedPreview(buffer.getvalue(), image.width, image.height)
        side //= 2


@dataclass
class _Step:
    node_id: str | None
    value: float | None
    maximum: float | None


class LivePreviews:
    """One attempt's previews: offered at ComfyUI's pace, sent at most once per interval, newest wins."""

    def __init__(
        self,
        job_id: str,
        notifier: Notifier,
        events: AttemptEvents,
        guard: Guard,
        interval: float = PREVIEW_INTERVAL_SECONDS,
    ) -> None:
        self._job_id = job_id
        self._notifier = notifier
        self._events = events
        self._guard = guard
        self._interval = interval
        self._pending: tuple[SentImage, _Step] | None = None
        # The running node's latest progress.
        self._step = _Step(None, None, None)
        self._last_sent = float("-inf")
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.sent = 0

    def step(self, node_id: str, value: float, maximum: float | None) -> None:
        """The running node's progress (``maximum`` None when it only started)."""
        self._step = _Step(node_id, value, maximum)

    def offer(self, image: SentImage) -> None:
        """The newest preview; cheap, so it can be called for every frame ComfyUI sends."""
        if self._closed:
            return
        self._pending = (image, self._step_of(image))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._send_when_due(), name=f"previews-{self._job_id}")

    def _step_of(self, image: SentImage) -> _Step:
        """ComfyUI sends a step's preview just before that step's progress frame (as recorded)."""
        latest = self._step
        if image.node_id is not None and image.node_id != latest.node_id:
            return _Step(image.node_id, None, None)
        if latest.value is None:
            return latest
        value = latest.value + 1
        return _Step(
            latest.node_id, value if latest.maximum is None else min(value, latest.maximum), latest.maximum
        )

    async def close(self) -> None:
        """No preview leaves after this (the prompt ended)."""
        self._closed = True
        self._pending = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _send_when_due(self) -> None:
        wait = self._last_sent + self._interval - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        if self._pending is None or self._closed:
            return
        (image, step), self._pending = self._pending, None
        self._last_sent = time.monotonic()
        try:
            if not await self._notifier.wants_previews(self._job_id):
                return
            await self._send(image, step)
        except Exception as error:  # a preview may be lost; the job must not
            logger.warning("preview not sent", extra={"job_id": self._job_id, "error": str(error)})

    async def _send(self, image: SentImage, step: _Step) -> None:
        encoded = await asyncio.to_thread(encode, image.data)
        seq = self._events.next()
        frame = frames.numbered(
            frames.preview(
                self._job_id,
                step.node_id,
                step.value,
                step.maximum,
                content_type="image/jpeg",
                width=encoded.width,
                height=encoded.height,
                size=len(encoded.jpeg),
                data=base64.b64encode(encoded.jpeg).decode(),
            ),
            seq,
        )
        if self._closed:
            return
        await self._notifier.preview(self._job_id, frame, self._guard)
        self._events.preview_sent(frame)
        self.sent += 1
