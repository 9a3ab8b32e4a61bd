"""HTTP routes with ComfyUI's paths, status codes and body shapes."""

from __future__ import annotations

import asyncio
import contextlib
import mimetypes
import os
import sys
import uuid
from pathlib import Path
from typing import Any

from aiohttp import web

from .executor import GC_INTERVAL_SECONDS, GC_PAUSE_SECONDS, Executor
from .model_folders import MODEL_FOLDERS
from .nodes import NODE_CLASSES
from .prompt_queue import PromptQueue, QueueItem
from .storage import Storage, inside
from .validation import validate_prompt
from .ws import SERVER_FEATURES, SocketHub

COMFYUI_VERSION = "0.3.64"
SENSITIVE_EXTRA_DATA_KEYS = ("auth_token_comfy_org", "api_key_comfy_org")
# Content types a browser would run; served as downloads instead, as ComfyUI does.
UNSAFE_CONTENT_TYPES = {
    "text/html",
    "text/html-sandboxed",
    "application/xhtml+xml",
    "text/javascript",
    "text/css",
}


class Simulator:
    """Everything one simulated ComfyUI instance holds: folders, queue, sockets and the worker."""

    def __init__(
        self,
        data_dir: Path,
        step_delay: float = 0.05,
        node_delay: float = 0.0,
        gc_interval: float = GC_INTERVAL_SECONDS,
        gc_pause: float = GC_PAUSE_SECONDS,
        extra_model_paths: Path | None = None,
    ) -> None:
        self.storage = Storage(data_dir, extra_model_paths)
        self.hub = SocketHub(lambda: self.queue.remaining())
        self.queue = PromptQueue(lambda: self.hub.send_sync("status", self.hub.status_data()))
        self.executor = Executor(
            self.queue, self.hub, self.storage, step_delay, node_delay, gc_interval, gc_pause
        )
        self.number = 0
        self._pump: asyncio.Task[None] | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=SERVER_FEATURES["max_upload_size"])
        app.on_startup.append(self._on_startup)
        app.on_shutdown.append(self._on_shutdown)
        app.on_cleanup.append(self._on_cleanup)
        routes = [
            web.get("/ws", self.hub.handle),
            web.post("/prompt", self.post_prompt),
            web.get("/prompt", self.get_prompt),
            web.get("/queue", self.get_queue),
            web.post("/queue", self.post_queue),
            web.post("/interrupt", self.post_interrupt),
            web.get("/history", self.get_history),
            web.get("/history/{prompt_id}", self.get_history_item),
            web.post("/history", self.post_history),
            web.get("/view", self.view),
            web.post("/upload/image", self.upload_image),
            web.get("/object_info", self.object_info),
            web.get("/object_info/{node_class}", self.object_info_one),
            web.get("/system_stats", self.system_stats),
            web.get("/features", self.features),
            web.post("/free", self.free),
            web.get("/models", self.models),
            web.get("/models/{folder}", self.models_in),
            web.get("/embeddings", self.embeddings),
        ]
        app.add_routes(routes)
        return app

    async def _on_startup(self, app: web.Application) -> None:
        self.hub.bind(asyncio.get_running_loop())
        self._pump = asyncio.create_task(self.hub.pump())
        self.executor.start()

    async def _on_shutdown(self, app: web.Application) -> None:
        await self.hub.close_all()

    async def _on_cleanup(self, app: web.Application) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.executor.stop)
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump

    # --- prompts and queue -------------------------------------------------------------------------

    async def post_prompt(self, request: web.Request) -> web.Response:
        # Malformed JSON raises here and becomes aiohttp's plain-text 500, as in ComfyUI.
        body = await request.json()
        if "number" in body:
            number: float = float(body["number"])
        else:
            number = self.number
            if body.get("front"):
                number = -number
            self.number += 1
        if "prompt" not in body:
            error = {
                "type": "no_prompt",
                "message": "No prompt provided",
                "details": "No prompt provided",
                "extra_info": {},
            }
            return web.json_response({"error": error, "node_errors": {}}, status=400)
        prompt = body["prompt"]
        prompt_id = str(body.get("prompt_id", uuid.uuid4()))
        result = validate_prompt(prompt, self.storage, body.get("partial_execution_targets"))
        extra_data: dict[str, Any] = body.get("extra_data", {})
        if "client_id" in body:
            extra_data["client_id"] = body["client_id"]
        if not result.ok:
            return web.json_response({"error": result.error, "node_errors": result.node_errors}, status=400)
        sensitive = {key: extra_data.pop(key) for key in SENSITIVE_EXTRA_DATA_KEYS if key in extra_data}
        item = QueueItem(
            number, prompt_id, self.queue.next_seq(), prompt, extra_data, result.outputs, sensitive
        )
        self.queue.put(item)
        return web.json_response(
            {"prompt_id": prompt_id, "number": number, "node_errors": result.node_errors}
        )

    async def get_prompt(self, request: web.Request) -> web.Response:
        return web.json_response(self.hub.status_data()["status"])

    async def get_queue(self, request: web.Request) -> web.Response:
        running, pending = self.queue.snapshot()
        return web.json_response({"queue_running": running, "queue_pending": pending})

    async def post_queue(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("clear"):
            self.queue.wipe()
        for prompt_id in body.get("delete", []):
            self.queue.delete(prompt_id)
        return web.Response(status=200)

    async def post_interrupt(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = {}
        prompt_id = body.get("prompt_id") if isinstance(body, dict) else None
        if not prompt_id or prompt_id in self.queue.running_ids():
            self.executor.interrupt()
        return web.Response(status=200)

    async def get_history(self, request: web.Request) -> web.Response:
        max_items = request.query.get("max_items")
        offset = int(request.query.get("offset", -1))
        history = self.queue.history(
            max_items=int(max_items) if max_items is not None else None, offset=offset
        )
        return web.json_response(history)

    async def get_history_item(self, request: web.Request) -> web.Response:
        return web.json_response(self.queue.history(request.match_info["prompt_id"]))

    async def post_history(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("clear"):
            self.queue.wipe_history()
        for prompt_id in body.get("delete", []):
            self.queue.delete_history(prompt_id)
        return web.Response(status=200)

    # --- files ---------------------------------------------------------------------------------------

    async def view(self, request: web.Request) -> web.StreamResponse:
        if "filename" not in request.query:
            return web.Response(status=404)
        filename = request.query["filename"]
        base: Path | None = None
        for kind in ("input", "output", "temp"):
            suffix = f" [{kind}]"
            if filename.endswith(suffix):
                filename, base = filename[: -len(suffix)], self.storage.dir_for_type(kind)
        if not filename or filename[0] == "/" or ".." in filename:
            return web.Response(status=400)
        if base is None:
            base = self.storage.dir_for_type(request.query.get("type", "output"))
        if base is None:
            return web.Response(status=400)
        folder = base
        if "subfolder" in request.query:
            folder = base / request.query["subfolder"]
            if not inside(base, folder):
                return web.Response(status=403)
        name = Path(filename).name
        file = folder / name
        if not file.is_file():
            return web.Response(status=404)
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if content_type in UNSAFE_CONTENT_TYPES:
            content_type = "application/octet-stream"
        headers = {"Content-Disposition": f'filename="{name}"', "Content-Type": content_type}
        return web.FileResponse(file, headers=headers)

    async def upload_image(self, request: web.Request) -> web.Response:
        post = await request.post()
        image = post.get("image")
        kind = str(post.get("type") or "input")
        base = self.storage.dir_for_type(kind)
        if base is None:
            # ComfyUI fails on an unknown type with an unhandled error, which aiohttp turns into a 500.
            raise web.HTTPInternalServerError(
                text="500 Internal Server Error\n\nServer got itself in trouble"
            )
        if not isinstance(image, web.FileField) or not image.filename:
            return web.Response(status=400)
        subfolder = str(post.get("subfolder", ""))
        folder = base / os.path.normpath(subfolder)
        filename = image.filename
        path = folder / filename
        if not inside(base, path):
            return web.Response(status=400)
        folder.mkdir(parents=True, exist_ok=True)
        content = image.file.read()
        overwrite = str(post.get("overwrite", "")) in ("true", "1")
        duplicate = False
        if not overwrite:
            stem, ext = Path(filename).stem, Path(filename).suffix
            index = 1
            while path.exists():
                if path.read_bytes() == content:
                    duplicate = True  # the same bytes under the same name are not stored twice
                    break
                filename = f"{stem} ({index}){ext}"
                path = folder / filename
                index += 1
        if not duplicate:
            path.write_bytes(content)
        return web.json_response({"name": filename, "subfolder": subfolder, "type": kind})

    # --- descriptive endpoints -------------------------------------------------------------------

    async def object_info(self, request: web.Request) -> web.Response:
        info = {name: node.object_info(self.storage) for name, node in NODE_CLASSES.items()}
        return web.json_response(info)

    async def object_info_one(self, request: web.Request) -> web.Response:
        node = NODE_CLASSES.get(request.match_info["node_class"])
        if node is None:
            return web.json_response({})
        return web.json_response({node.name: node.object_info(self.storage)})

    async def system_stats(self, request: web.Request) -> web.Response:
        total, free = _memory()
        stats = {
            "system": {
                "os": os.name,
                "ram_total": total,
                "ram_free": free,
                "comfyui_version": COMFYUI_VERSION,
                "required_frontend_version": "1.27.10",
                "installed_templates_version": "0.1.95",
                "required_templates_version": "0.1.95",
                "python_version": sys.version,
                "pytorch_version": "none (comfyui-sim)",
                "embedded_python": False,
                "argv": ["comfyui-sim"],
            },
            "devices": [
                {
                    "name": "cpu",
                    "type": "cpu",
                    "index": None,
                    "vram_total": total,
                    "vram_free": free,
                    "torch_vram_total": total,
                    "torch_vram_free": free,
                }
            ],
        }
        return web.json_response(stats)

    async def features(self, request: web.Request) -> web.Response:
        return web.json_response(SERVER_FEATURES)

    async def free(self, request: web.Request) -> web.Response:
        # No models are ever loaded, so there is nothing to unload; the body is still read as ComfyUI does.
        with contextlib.suppress(ValueError):
            await request.json()
        return web.Response(status=200)

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response(MODEL_FOLDERS)

    async def models_in(self, request: web.Request) -> web.Response:
        folder = request.match_info["folder"]
        if folder not in MODEL_FOLDERS:
            return web.Response(status=404)
        return web.json_response(self.storage.models.names(folder))

    async def embeddings(self, request: web.Request) -> web.Response:
        return web.json_response([])


def _memory() -> tuple[int, int]:
    try:
        page = os.sysconf("SC_PAGE_SIZE")
        return page * os.sysconf("SC_PHYS_PAGES"), page * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0, 0
