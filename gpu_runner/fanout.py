"""Pushes job.status, job.progress and job.preview frames to a job's WebSocket subscribers.

Each job has one channel: frames leave in order from one task, so a post never blocks the prompt
loop and a slow or failing post delays nothing but later frames. Progress is coalesced to at most
one frame per ``PROGRESS_INTERVAL`` per job (the newest wins), then to each subscriber's own rate and
only when the percent moved (``gpu_runner.progress_gate``); status frames are never dropped, and
no progress frame follows a terminal one. Every frame carries its attempt's guard, asked just before
the post: a frame of an attempt that lost its lease is never sent. Subscribers are looked up for each
frame that leaves (at most ten a second), so a subscriber sees every frame due to it from the moment
its subscription is visible to the Query on the job's partition (eventually consistent); the same Query
tells the job's cancel watch whether a cancel mark is there (gpu_runner/cancel_hints.py). Previews go
only to the subscriptions that asked for them; whether any did is known from each frame's lookup, so a
job nobody watches for previews makes none.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from typing import Any

from gpu_runner.cancel_hints import CancelHints
from gpu_runner.log import logger
from gpu_runner.notify import Guard
from gpu_runner.progress_gate import ProgressGate
from shared import frames
from shared.aws.connections import ConnectionStore, Subscription
from shared.aws.push import ConnectionPoster
from shared.events import state_seq
from shared.models import Job, JobStatus
from shared.views import job_view

PROGRESS_INTERVAL = 0.1
# Jobs whose terminal frame went out, remembered so no later frame of theirs follows it.
ENDED_REMEMBERED = 1024

Outgoing = tuple[dict[str, Any], Guard | None]
TERMINAL_VALUES = {status.value for status in JobStatus if status.is_terminal}


class JobChannel:
    def __init__(
        self, job_id: str, sender: Callable[[str, dict[str, Any], Guard | None], Awaitable[None]]
    ) -> None:
        self.job_id = job_id
        self._send = sender
        self._outbox: deque[Outgoing] = deque()
        self._latest_progress: Outgoing | None = None
        self._last_progress_at = 0.0
        self._wake = asyncio.Event()
        self._closing = False
        self.task = asyncio.create_task(self._run(), name=f"fanout-{job_id}")

    def status(self, frame: dict[str, Any], final: bool, guard: Guard | None) -> None:
        if self._closing:
            return  # the job's terminal frame is out or on its way: nothing follows it
        if self._latest_progress is not None:
            # A kept progress frame is newer progress: the pending one it supersedes is dropped, as
            # coalescing drops it for any newer frame; a status frame sends it first.
            if frame.get("type") != "job.progress":
                self._outbox.append(self._latest_progress)
            self._latest_progress = None
        self._outbox.append((frame, guard))
        self._closing = final
        self._wake.set()

    def preview(self, frame: dict[str, Any], guard: Guard | None) -> None:
        if not self._closing:
            # The pending progress frame is numbered below the preview: it leaves first, so a client
            # that drops frames at or below the last seq it handled never loses it.
            if self._latest_progress is not None:
                self._outbox.append(self._latest_progress)
                self._latest_progress = None
            self._outbox.append((frame, guard))
            self._wake.set()

    def progress(self, frame: dict[str, Any], guard: Guard | None) -> None:
        if not self._closing:
            self._latest_progress = (frame, guard)
            self._wake.set()

    async def _deliver(self, outgoing: Outgoing) -> None:
        frame, guard = outgoing
        await self._send(self.job_id, frame, guard)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._outbox:
                await self._deliver(self._outbox.popleft())
            if self._latest_progress is not None:
                wait = self._last_progress_at + PROGRESS_INTERVAL - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                    self._wake.set()
                    continue
                outgoing, self._latest_progress = self._latest_progress, None
                self._last_progress_at = time.monotonic()
                await self._deliver(outgoing)
            if self._closing and not self._outbox and self._latest_progress is None:
                return


class WebSocketNotifier:
    def __init__(
        self,
        connections: ConnectionStore,
        poster: ConnectionPoster,
        presign: Callable[[str], str],
        cancel_hints: CancelHints | None = None,
    ) -> None:
        self._connections = connections
        self._cancel_hints = cancel_hints or CancelHints()
        self._poster = poster
        self._presign = presign
        self._channels: dict[str, JobChannel] = {}
        self._draining: set[asyncio.Task[None]] = set()
        self._ended: OrderedDict[str, None] = OrderedDict()
        # Per job in hand: did any subscriber ask for previews, as of the latest lookup.
        self._previews_wanted: dict[str, bool] = {}
        self._gates: dict[str, ProgressGate] = {}
        self.posts = 0

    def _channel(self, job_id: str) -> JobChannel | None:
        if job_id in self._ended:
            return None
        channel = self._channels.get(job_id)
        if channel is None or channel.task.done():
            channel = self._channels[job_id] = JobChannel(job_id, self._post_to_subscribers)
        return channel

    async def status(self, job: Job, guard: Guard | None = None) -> None:
        view = job_view(job, self._presign) if job.status.is_terminal else None
        channel = self._channel(job.job_id)
        if channel is None:
            return
        frame = frames.numbered(frames.status(job, view), state_seq(job))
        channel.status(frame, job.status.is_terminal, guard)
        if job.status.is_terminal:
            self._previews_wanted.pop(job.job_id, None)
            self._ended[job.job_id] = None
            if len(self._ended) > ENDED_REMEMBERED:
                self._ended.popitem(last=False)
            # The channel ends itself once its last frames are out; until then close() waits for it.
            self._channels.pop(job.job_id, None)
            self._draining.add(channel.task)
            channel.task.add_done_callback(self._draining.discard)

    async def progress(
        self,
        job: Job,
        node_id: str,
        node_type: str | None,
        value: float,
        maximum: float,
        guard: Guard | None = None,
        *,
        seq: int | None = None,
        keep: bool = False,
    ) -> None:
        channel = self._channel(job.job_id)
        if channel is not None:
            frame = frames.progress(job.job_id, node_id, node_type, value, maximum, job.progress)
            frames.numbered(frame, seq)
            if keep:
                channel.status(frame, False, guard)
            else:
                channel.progress(frame, guard)

    async def wants_previews(self, job_id: str) -> bool:
        if job_id in self._ended:
            return False
        if job_id not in self._previews_wanted:
            found = await self._lookup(job_id)
            self._previews_wanted[job_id] = any(s.previews for s in found)
        return self._previews_wanted[job_id]

    async def preview(self, job_id: str, frame: dict[str, Any], guard: Guard | None = None) -> None:
        channel = self._channel(job_id)
        if channel is not None:
            channel.preview(frame, guard)

    async def _due(self, job_id: str, frame: dict[str, Any]) -> list[str]:
        """Whoever is subscribed now, read for every frame that leaves (a client that subscribed a
        moment ago misses nothing after it, one Query per frame, at most ten a second); a progress
        frame only to those its gate lets through, a preview only to those who asked for previews."""
        found = await self._lookup(job_id)
        if job_id not in self._ended:
            self._previews_wanted[job_id] = any(s.previews for s in found)
        if frame.get("type") != "job.progress":
            if frame.get("status") in TERMINAL_VALUES:
                self._gates.pop(job_id, None)
            return _recipients(found, frame)
        gate = self._gates.setdefault(job_id, ProgressGate())
        return gate.due(found, float(frame.get("percent", 0.0)))

    async def _lookup(self, job_id: str) -> list[Subscription]:
        lookup = await asyncio.to_thread(self._connections.lookup, job_id)
        self._cancel_hints.looked_up(job_id, lookup.cancel_marked)
        return lookup.subscriptions

    async def close(self) -> None:
        tasks = [channel.task for channel in self._channels.values()] + list(self._draining)
        if tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 2.0)

    async def _post_to_subscribers(self, job_id: str, frame: dict[str, Any], guard: Guard | None) -> None:
        try:
            subscribers = await self._due(job_id, frame)
            if not subscribers:
                return
            if guard is not None and not await guard.holds():
                return
            # The last word is the clock, checked as each request leaves (see ConnectionPoster).
            send_before = guard.act_before_ms() if guard is not None else None
            results = await asyncio.gather(
                *(asyncio.to_thread(self._poster.post, cid, frame, send_before) for cid in subscribers)
            )
        except Exception as error:  # a push may fail; the job must not
            logger.warning("fan-out failed", extra={"job_id": job_id, "error": str(error)})
            return
        self.posts += len(subscribers)
        for connection_id, alive in zip(subscribers, results, strict=True):
            if not alive:
                logger.info("subscriber gone", extra={"job_id": job_id, "connection_id": connection_id})
                with contextlib.suppress(Exception):
                    # Only this subscription: the connection's others go as their own posts answer 410.
                    await asyncio.to_thread(self._connections.unsubscribe, connection_id, job_id)


def _recipients(found: list[Subscription], frame: dict[str, Any]) -> list[str]:
    """Everyone, except that a preview goes only to those who asked for previews."""
    if frame.get("type") == "job.preview":
        return [s.connection_id for s in found if s.previews]
    return [s.connection_id for s in found]
