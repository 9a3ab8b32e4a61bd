"""Run a simulator on a background thread with its own event loop, for tests and local stacks."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
from pathlib import Path
from types import TracebackType

from aiohttp import web

from .executor import GC_INTERVAL_SECONDS, GC_PAUSE_SECONDS
from .server import Simulator


class SimulatorServer:
    """A ComfyUI simulator listening on ``host:port`` (port 0 picks a free one).

    ``data_dir`` holds the input, output, temp and models folders; without one a temporary folder is used and
    removed on stop. ``step_delay`` is the time each KSampler step takes; ``node_delay`` is added to every
    node that really runs, to stand in for slow nodes; ``gc_pause`` is ComfyUI's garbage collection after a
    prompt, at most once per ``gc_interval`` (all in seconds). ``extra_model_paths`` is ComfyUI's
    ``--extra-model-paths-config`` file: more folders its model loaders read.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        step_delay: float = 0.05,
        data_dir: str | Path | None = None,
        node_delay: float = 0.0,
        gc_interval: float = GC_INTERVAL_SECONDS,
        gc_pause: float = GC_PAUSE_SECONDS,
        preview_method: str = "none",
        extra_model_paths: str | Path | None = None,
    ) -> None:
        self.host = host
        self.preview_method = preview_method
        self.extra_model_paths = Path(extra_model_paths) if extra_model_paths else None
        self.requested_port = port
        self.step_delay = step_delay
        self.node_delay = node_delay
        self.gc_interval = gc_interval
        self.gc_pause = gc_pause
        self._own_dir = data_dir is None
        self.data_dir = (
            Path(data_dir) if data_dir is not None else Path(tempfile.mkdtemp(prefix="comfyui-sim-"))
        )
        self.port: int | None = None
        self.simulator: Simulator | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the simulator is not running")
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1) + "/ws"

    def start(self, timeout: float = 10.0) -> str:
        """Start listening and return the base URL once the port accepts connections."""
        if self._thread is not None:
            return self.url
        self._thread = threading.Thread(target=self._run, name="comfyui-sim-loop", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the simulator did not start in time")
        if self._error is not None:
            raise RuntimeError("the simulator failed to start") from self._error
        return self.url

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    async def _serve(self) -> None:
        self.simulator = Simulator(
            self.data_dir,
            self.step_delay,
            self.node_delay,
            self.gc_interval,
            self.gc_pause,
            self.extra_model_paths,
        )
        self.simulator.executor.preview_method = self.preview_method
        self._runner = web.AppRunner(self.simulator.app(), access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.requested_port)
        await site.start()
        address = self._runner.addresses[0]
        self.port = int(address[1])

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self._runner is not None and not loop.is_closed():
            future = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), loop)
            future.result(timeout=15)
        if not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=15)
        self._thread = None
        self._ready.clear()
        self.port = None
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> SimulatorServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
