"""WebSocket sessions and the ordered message pump between the worker thread and the sockets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

log = logging.getLogger(__name__)

SERVER_FEATURES = {"supports_preview_metadata": True, "max_upload_size": 104857600}

# (payload, sid): a JSON text frame or a binary frame, for one client or, with sid None, for all.
Message = tuple[str | bytes, str | None]


class SocketHub:
    """Sockets by clientId plus what the reconnect rule needs to know about the running prompt."""

    def __init__(self, queue_remaining: Callable[[], int]) -> None:
        self.queue_remaining = queue_remaining
        self.sockets: dict[str, web.WebSocketResponse] = {}
        self.metadata: dict[str, dict[str, Any]] = {}
        self._open: set[web.WebSocketResponse] = set()  # includes replaced sockets, so shutdown closes them
        # Set by the worker: the client of the prompt being run and the node it last announced.
        self.client_id: str | None = None
        self.last_node_id: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._messages: asyncio.Queue[Message] | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._messages = asyncio.Queue()

    def status_data(self, sid: str | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {"status": {"exec_info": {"queue_remaining": self.queue_remaining()}}}
        if sid is not None:
            data["sid"] = sid
        return data

    def supports_preview_metadata(self, sid: str | None) -> bool:
        if sid is None:
            return False
        flags = self.metadata.get(sid, {}).get("feature_flags", {})
        return bool(flags.get("supports_preview_metadata", False))

    def send_sync(self, event: str, data: Any, sid: str | None = None) -> None:
        """Queue a text frame from any thread; frames leave in the order they were queued."""
        self._enqueue((json.dumps({"type": event, "data": data}), sid))

    def send_bytes_sync(self, frame: bytes, sid: str | None = None) -> None:
        self._enqueue((frame, sid))

    def _enqueue(self, message: Message) -> None:
        if self._loop is None or self._messages is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closing; the frame is dropped like a lost one
            self._loop.call_soon_threadsafe(self._messages.put_nowait, message)

    async def pump(self) -> None:
        assert self._messages is not None
        while True:
            payload, sid = await self._messages.get()
            await self.deliver(payload, sid)

    async def deliver(self, payload: str | bytes, sid: str | None) -> None:
        # Frames for a client without an open socket are dropped, as ComfyUI drops them.
        targets = (
            list(self.sockets.values()) if sid is None else [self.sockets[sid]] if sid in self.sockets else []
        )
        for ws in targets:
            await self._send(ws, payload)

    @staticmethod
    async def _send(ws: web.WebSocketResponse, payload: str | bytes) -> None:
        if ws.closed:
            return
        try:
            if isinstance(payload, bytes):
                await ws.send_bytes(payload)
            else:
                await ws.send_str(payload)
        except (ConnectionError, RuntimeError) as exc:
            log.debug("dropping a frame for a closing socket: %s", exc)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sid = request.query.get("clientId", "")
        if sid:
            # The newest socket for a clientId wins; the old one stays open but receives nothing more.
            self.sockets.pop(sid, None)
        else:
            sid = uuid.uuid4().hex
        self.sockets[sid] = ws
        self.metadata[sid] = {"feature_flags": {}}
        self._open.add(ws)
        try:
            await self._send(ws, json.dumps({"type": "status", "data": self.status_data(sid)}))
            if self.client_id == sid and self.last_node_id is not None:
                await self._send(ws, json.dumps({"type": "executing", "data": {"node": self.last_node_id}}))
            first_message = True
            async for msg in ws:
                if msg.type == WSMsgType.ERROR:
                    break
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(msg.data)
                except ValueError:
                    continue
                if first_message and isinstance(data, dict) and data.get("type") == "feature_flags":
                    flags = data.get("data")
                    self.metadata[sid]["feature_flags"] = flags if isinstance(flags, dict) else {}
                    await self._send(ws, json.dumps({"type": "feature_flags", "data": SERVER_FEATURES}))
                first_message = False
        finally:
            self._open.discard(ws)
            if self.sockets.get(sid) is ws:
                self.sockets.pop(sid, None)
                self.metadata.pop(sid, None)
        return ws

    async def close_all(self) -> None:
        for ws in list(self._open):
            with contextlib.suppress(Exception):
                await ws.close()
