"""ComfyUI's HTTP and WebSocket API, as recorded in the protocol transcripts.

One WebSocket per runner, opened before any prompt is submitted (frames for a client with no open
socket are dropped), reconnected when it drops. Frames are routed to the prompt they name; the
runner always sends its own ``prompt_id`` so frames that beat the POST's answer still find their way.
Its first frame asks for binary images that name their prompt and node (event 4), so images sent by
``SaveImageWebsocket`` can be routed like any other frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from gpu_runner.comfy_binary import FEATURE_FLAGS, MalformedFrame, SentImage, decode

log = logging.getLogger(__name__)

# Markers the router puts in a prompt's queue when the socket drops or comes back: frames sent in
# between are lost, so the follower must look at /history and /queue to learn what happened.
DISCONNECTED = "__disconnected__"
RECONNECTED = "__reconnected__"
# A binary image naming our prompt; its data holds the SentImage under "image".
SENT_IMAGE = "__sent_image__"


class ComfyUnavailable(Exception):
    """ComfyUI could not be reached or answered 5xx: a transient fault, the job is retried."""


@dataclass
class ComfyRejected(Exception):
    """ComfyUI refused the prompt: a permanent fault of the workflow.

    ``partial``: ComfyUI answered 200 but listed node errors; it queued only the valid outputs, and the
    prompt was withdrawn (deleted from the queue, interrupted) before this was raised.
    """

    error: dict[str, Any]
    node_errors: dict[str, Any]
    partial: bool = False

    def __str__(self) -> str:
        return str(self.error.get("message", "prompt rejected"))


@dataclass(frozen=True)
class Frame:
    type: str
    data: dict[str, Any]


class ComfyClient:
    def __init__(self, base_url: str, client_id: str | None = None, request_timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id or uuid.uuid4().hex
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._session: aiohttp.ClientSession | None = None
        self._queues: dict[str, asyncio.Queue[Frame]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        # How many times the socket has opened: a new count may be a restarted ComfyUI with other nodes.
        self.connections = 0
        self._closing = False
        # Called (in its own task) each time the socket opens.
        self.on_connect: Callable[[], Awaitable[None]] | None = None
        self._on_connect_task: asyncio.Task[None] | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=self._timeout)
        self._reader = asyncio.create_task(self._read_forever(), name="comfy-ws-reader")

    async def close(self) -> None:
        self._closing = True
        if self._reader:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._session:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "start() first"
        return self._session

    async def wait_connected(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._connected.wait(), timeout)
        except TimeoutError:
            return False
        return True

    # -- the socket -----------------------------------------------------------------------------

    async def _read_forever(self) -> None:
        ws_url = self.base_url.replace("http", "ws", 1) + f"/ws?clientId={self.client_id}"
        delay = 0.2
        while not self._closing:
            try:
                async with self.session.ws_connect(ws_url, heartbeat=20, max_msg_size=0) as ws:
                    # Only a socket's first frame may set its features.
                    await ws.send_json(FEATURE_FLAGS)
                    self.connections += 1
                    self._connected.set()
                    if self.on_connect is not None:
                        self._on_connect_task = asyncio.create_task(self._call_on_connect())
                    delay = 0.2
                    self._broadcast(RECONNECTED)
                    async for message in ws:
                        if message.type == aiohttp.WSMsgType.TEXT:
                            self._route(message.data)
                        elif message.type == aiohttp.WSMsgType.BINARY:
                            self._route_binary(message.data)
                        elif message.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSED):
                            break
            except asyncio.CancelledError:
                raise
            except (aiohttp.ClientError, OSError) as error:
                log.debug("comfyui socket: %s", error)
            if self._connected.is_set():
                self._connected.clear()
                self._broadcast(DISCONNECTED)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def settled(self) -> None:
        """Returns once the connect callback of the current socket has run."""
        task = self._on_connect_task
        if task is not None and not task.done():
            await asyncio.shield(task)

    async def _call_on_connect(self) -> None:
        assert self.on_connect is not None
        try:
            await self.on_connect()
        except Exception:
            log.exception("the ComfyUI connect callback failed")

    def _route(self, raw: str) -> None:
        try:
            message = json.loads(raw)
            frame = Frame(str(message["type"]), dict(message.get("data") or {}))
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed ComfyUI frame")
            return
        prompt_id = frame.data.get("prompt_id")
        if isinstance(prompt_id, str) and prompt_id in self._queues:
            self._queues[prompt_id].put_nowait(frame)

    def _route_binary(self, raw: bytes) -> None:
        try:
            content = decode(raw)
        except MalformedFrame:
            log.warning("ignoring a malformed binary ComfyUI frame")
            return
        if isinstance(content, SentImage) and content.prompt_id in self._queues:
            self._queues[content.prompt_id].put_nowait(Frame(SENT_IMAGE, {"image": content}))

    def _broadcast(self, marker: str) -> None:
        for queue in self._queues.values():
            queue.put_nowait(Frame(marker, {}))

    @contextlib.asynccontextmanager
    async def listen(self, prompt_id: str) -> AsyncIterator[asyncio.Queue[Frame]]:
        """Frames for ``prompt_id``, from before it is submitted until the caller is done with it."""
        queue: asyncio.Queue[Frame] = asyncio.Queue()
        self._queues[prompt_id] = queue
        try:
            yield queue
        finally:
            self._queues.pop(prompt_id, None)

    # -- HTTP -----------------------------------------------------------------------------------

    async def _request(self, method: str, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        try:
            response = await self.session.request(method, self.base_url + path, **kwargs)
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            raise ComfyUnavailable(f"{method} {path}: {error or type(error).__name__}") from error
        if response.status >= 500:
            text = await response.text()
            raise ComfyUnavailable(f"{method} {path}: HTTP {response.status} {text[:200]}")
        return response

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._request(method, path, **kwargs)
        async with response:
            if response.status >= 400:
                raise ComfyUnavailable(f"{method} {path}: HTTP {response.status}")
            return await response.json(content_type=None)

    async def system_stats(self) -> dict[str, Any]:
        return dict(await self._json("GET", "/system_stats"))

    async def object_info(self) -> dict[str, Any]:
        return dict(await self._json("GET", "/object_info"))

    async def model_folders(self) -> list[str]:
        """ComfyUI's own model folder names (``checkpoints``, ``loras``, ...), from ``GET /models``."""
        listed = await self._json("GET", "/models")
        return [str(name) for name in listed] if isinstance(listed, list) else []

    async def submit(self, prompt_id: str, graph: dict[str, Any]) -> dict[str, Any]:
        body = {"prompt": graph, "client_id": self.client_id, "prompt_id": prompt_id}
        response = await self._request("POST", "/prompt", json=body)
        async with response:
            payload = await response.json(content_type=None)
            if response.status == 400:
                raise ComfyRejected(payload.get("error") or {}, payload.get("node_errors") or {})
            if response.status >= 400:
                raise ComfyUnavailable(f"POST /prompt: HTTP {response.status}")
        node_errors = payload.get("node_errors") or {}
        if node_errors:
            # ComfyUI queued only the valid outputs: a job must never lose one silently. Withdraw it
            # at once (delete if still pending, interrupt if it already started).
            await self.delete_queued(prompt_id)
            await self.interrupt(prompt_id)
            error = {
                "type": "prompt_outputs_failed_validation",
                "message": "Prompt outputs failed validation",
                "details": f"{len(node_errors)} node(s) with errors; the valid outputs were withdrawn",
            }
            raise ComfyRejected(error, node_errors, partial=True)
        return dict(payload)

    async def interrupt(self, prompt_id: str) -> None:
        """Interrupts the prompt only if it is the one running (ComfyUI ignores it otherwise)."""
        response = await self._request("POST", "/interrupt", json={"prompt_id": prompt_id})
        response.release()

    async def delete_queued(self, prompt_id: str) -> None:
        """Drops a prompt that has not started; a running or unknown id is left alone by ComfyUI."""
        response = await self._request("POST", "/queue", json={"delete": [prompt_id]})
        response.release()

    async def queue_ids(self) -> tuple[set[str], set[str]]:
        """The running and pending prompt ids."""
        queue = await self._json("GET", "/queue")
        running = {str(item[1]) for item in queue.get("queue_running", [])}
        pending = {str(item[1]) for item in queue.get("queue_pending", [])}
        return running, pending

    async def history(self, prompt_id: str) -> dict[str, Any] | None:
        """The prompt's history entry, or None while it has not finished."""
        history = await self._json("GET", f"/history/{prompt_id}")
        entry = history.get(prompt_id) if isinstance(history, dict) else None
        return dict(entry) if entry else None

    async def view(self, filename: str, subfolder: str, folder_type: str) -> tuple[bytes, str | None]:
        params = {"filename": filename, "subfolder": subfolder, "type": folder_type}
        response = await self._request("GET", "/view", params=params)
        async with response:
            if response.status == 404:
                raise FileNotFoundError(f"ComfyUI has no {folder_type} file {subfolder}/{filename}")
            if response.status >= 400:
                raise ComfyUnavailable(f"GET /view {filename}: HTTP {response.status}")
            return await response.read(), response.headers.get("Content-Type")

    async def upload_image(self, name: str, data: bytes, subfolder: str = "") -> str:
        """Uploads an input file; returns the name to put in a LoadImage input."""
        form = aiohttp.FormData()
        form.add_field("image", data, filename=name)
        form.add_field("overwrite", "true")
        form.add_field("type", "input")
        if subfolder:
            form.add_field("subfolder", subfolder)
        payload = await self._json("POST", "/upload/image", data=form)
        sub = payload.get("subfolder") or ""
        return f"{sub}/{payload['name']}" if sub else str(payload["name"])
