"""The worker thread: takes one prompt at a time off the queue and runs it, sending ComfyUI's frames."""

from __future__ import annotations

import logging
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from . import binary
from .formatting import format_value
from .graph import CacheEntry, ExecutionList, ProgressRegistry, is_link, signatures
from .nodes import NODE_CLASSES, InterruptProcessingError
from .prompt_queue import PromptQueue, QueueItem
from .storage import Storage
from .ws import SocketHub

log = logging.getLogger(__name__)

# ComfyUI's prompt worker runs gc.collect() after a prompt once this long has passed since the last one.
GC_INTERVAL_SECONDS = 10.0
# How long that collection held the worker on the recorded machine (230-350 ms).
GC_PAUSE_SECONDS = 0.29


@dataclass
class _Run:
    """State of the prompt being executed."""

    item: QueueItem
    client_id: str | None
    keys: dict[str, str]
    progress: ProgressRegistry
    messages: list[list[Any]] = field(default_factory=list)
    executed: set[str] = field(default_factory=set)
    ui: dict[str, dict[str, Any]] = field(default_factory=dict)


class _NodeContext:
    """The RunContext a node sees while it runs."""

    def __init__(self, executor: Executor, run: _Run, node_id: str) -> None:
        self._executor = executor
        self._run = run
        self.node_id = node_id
        self.prompt_id = run.item.prompt_id
        self.prompt = run.item.prompt
        self.extra_pnginfo = run.item.extra_data.get("extra_pnginfo")
        self.storage = executor.storage
        self.step_delay = executor.step_delay
        self.preview_method = executor.preview_method

    def progress(
        self, value: int, total: int, preview_png: bytes | None = None, image_format: str = "PNG"
    ) -> None:
        hub, sid = self._executor.hub, self._run.client_id
        self._executor.check_interrupt()
        self._run.progress.update(self.node_id, value, total)
        with_metadata = hub.supports_preview_metadata(sid)
        if preview_png is not None and with_metadata:
            metadata = {
                "node_id": self.node_id,
                "prompt_id": self.prompt_id,
                "display_node_id": self.node_id,
                "parent_node_id": None,
                "real_node_id": self.node_id,
                "image_type": "image/jpeg" if image_format == "JPEG" else "image/png",
            }
            hub.send_bytes_sync(binary.preview_image_with_metadata(preview_png, metadata), sid)
        progress = {"value": value, "max": total, "prompt_id": self.prompt_id, "node": self.node_id}
        hub.send_sync("progress", progress, sid)
        if preview_png is not None and not with_metadata:
            code = binary.IMAGE_FORMAT_JPEG if image_format == "JPEG" else binary.IMAGE_FORMAT_PNG
            hub.send_bytes_sync(binary.preview_image(preview_png, code), sid)

    def send_text(self, text: str) -> None:
        self._executor.hub.send_bytes_sync(binary.text(self.node_id, text))

    def pause(self, seconds: float) -> None:
        if seconds > 0:
            self._executor.interrupted.wait(seconds)


class Executor:
    def __init__(
        self,
        queue: PromptQueue,
        hub: SocketHub,
        storage: Storage,
        step_delay: float,
        node_delay: float,
        gc_interval: float = GC_INTERVAL_SECONDS,
        gc_pause: float = GC_PAUSE_SECONDS,
    ) -> None:
        self.queue = queue
        self.hub = hub
        self.storage = storage
        self.step_delay = step_delay
        self.node_delay = node_delay
        self.gc_interval = gc_interval
        self.gc_pause = gc_pause
        # Set by the server from --preview-method; samplers send previews unless it is "none".
        self.preview_method = "none"
        # (start, end) in epoch seconds of each collection, for tests and the benchmark.
        self.collections: list[tuple[float, float]] = []
        self.interrupted = threading.Event()
        self._stopping = threading.Event()
        self._cache: dict[str, CacheEntry] = {}
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._work, name="comfyui-sim-worker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self.interrupted.set()
        self.queue.wake()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def interrupt(self) -> None:
        self.interrupted.set()

    def check_interrupt(self) -> None:
        if self.interrupted.is_set():
            raise InterruptProcessingError()

    def _work(self) -> None:
        # As ComfyUI's prompt_worker: after a prompt, collect garbage once gc_interval has passed since
        # the last collection (at the latest when the queue stays empty until then). The first prompt
        # always collects: ComfyUI starts its clock at 0.
        last_gc = float("-inf")
        need_gc = False
        while not self._stopping.is_set():
            timeout = 0.5
            if need_gc:
                timeout = min(timeout, max(self.gc_interval - (time.monotonic() - last_gc), 0.0))
            got = self.queue.get(timeout=timeout)
            if got is not None:
                self._run_one(*got)
                need_gc = True
            if need_gc and time.monotonic() - last_gc > self.gc_interval:
                last_gc = time.monotonic()
                self.collect_garbage()
                need_gc = False

    def collect_garbage(self) -> None:
        """Stands in for gc.collect(): the worker takes no prompt meanwhile."""
        started = time.time()
        if self.gc_pause > 0:
            self._stopping.wait(self.gc_pause)
        self.collections.append((started, time.time()))

    def _run_one(self, item: QueueItem, item_id: int) -> None:
        try:
            success, result, messages = self.execute(item)
        except Exception:
            log.exception("the simulator failed while running prompt %s", item.prompt_id)
            success, result, messages = False, {"outputs": {}, "meta": {}}, []
        status = {
            "status_str": "success" if success else "error",
            "completed": success,
            "messages": messages,
        }
        self.queue.task_done(item_id, result, status)
        if self.hub.client_id is not None:
            self.hub.send_sync("executing", {"node": None, "prompt_id": item.prompt_id}, self.hub.client_id)

    def _add_message(self, run: _Run, event: str, data: dict[str, Any], broadcast: bool) -> None:
        data = {**data, "timestamp": int(time.time() * 1000)}
        run.messages.append([event, data])
        if run.client_id is not None or broadcast:
            self.hub.send_sync(event, data, run.client_id)

    def execute(self, item: QueueItem) -> tuple[bool, dict[str, Any], list[list[Any]]]:
        # A stale interrupt (sent while idle) must not hit this prompt.
        self.interrupted.clear()
        prompt_id = item.prompt_id
        client_id = item.extra_data.get("client_id")
        self.hub.client_id = client_id
        progress = ProgressRegistry(
            prompt_id, lambda data: self.hub.send_sync("progress_state", data, client_id)
        )
        run = _Run(item, client_id, {}, progress)
        self._add_message(run, "execution_start", {"prompt_id": prompt_id}, broadcast=False)
        run.keys = signatures(item.prompt, self.storage)
        # Like ComfyUI's default cache, keep only results the new prompt can use.
        wanted = set(run.keys.values())
        self._cache = {k: v for k, v in self._cache.items() if k in wanted}
        cached = [node_id for node_id in item.prompt if run.keys[node_id] in self._cache]
        self._add_message(run, "execution_cached", {"nodes": cached, "prompt_id": prompt_id}, broadcast=False)

        plan = ExecutionList(item.prompt, lambda node_id: run.keys[node_id] in self._cache)
        for output in item.outputs:
            plan.add_node(output)
        success = False
        while not plan.is_empty():
            node_id = plan.next_node()
            failure = self._execute_node(run, node_id)
            if failure is not None:
                self._report_failure(run, *failure)
                break
            plan.complete(node_id)
        else:
            self._add_message(run, "execution_success", {"prompt_id": prompt_id}, broadcast=False)
            success = True
        result = {
            "outputs": {node_id: ui["output"] for node_id, ui in run.ui.items()},
            "meta": {node_id: ui["meta"] for node_id, ui in run.ui.items()},
        }
        self.hub.last_node_id = None
        return success, result, run.messages

    def _execute_node(self, run: _Run, node_id: str) -> tuple[str, dict[str, Any], BaseException] | None:
        prompt_id, sid = run.item.prompt_id, run.client_id
        node = run.item.prompt[node_id]
        node_class = NODE_CLASSES[node["class_type"]]
        entry = self._cache.get(run.keys[node_id])
        if entry is not None:
            if sid is not None:
                output = (entry.ui or {}).get("output")
                executed = {
                    "node": node_id,
                    "display_node": node_id,
                    "output": output,
                    "prompt_id": prompt_id,
                }
                self.hub.send_sync("executed", executed, sid)
            if entry.ui is not None:
                run.ui[node_id] = entry.ui
            run.progress.finish(node_id)
            return None

        inputs: dict[str, Any] | None = None
        try:
            run.progress.start(node_id)
            inputs = self._gather_inputs(run, node_id)
            if sid is not None:
                self.hub.last_node_id = node_id
                self.hub.send_sync(
                    "executing", {"node": node_id, "display_node": node_id, "prompt_id": prompt_id}, sid
                )
            self.check_interrupt()
            if self.node_delay > 0:
                self._stopping.wait(self.node_delay)
            out = node_class.run(_NodeContext(self, run, node_id), inputs)
            ui = None
            if out.ui:
                meta = {
                    "node_id": node_id,
                    "display_node": node_id,
                    "parent_node": None,
                    "real_node_id": node_id,
                }
                ui = {"meta": meta, "output": out.ui}
                run.ui[node_id] = ui
                if sid is not None:
                    executed = {
                        "node": node_id,
                        "display_node": node_id,
                        "output": out.ui,
                        "prompt_id": prompt_id,
                    }
                    self.hub.send_sync("executed", executed, sid)
            run.progress.finish(node_id)
            self._cache[run.keys[node_id]] = CacheEntry(out.result, ui)
        except InterruptProcessingError as iex:
            return node_id, {}, iex
        except Exception as ex:
            _, _, tb = sys.exc_info()
            formatted = {name: [format_value(value)] for name, value in (inputs or {}).items()}
            details = {
                "exception_message": f"{ex}\n",
                "exception_type": type(ex).__name__,
                "traceback": [entry.splitlines()[0] for entry in traceback.format_tb(tb)],
                "current_inputs": formatted,
            }
            return node_id, details, ex
        run.executed.add(node_id)
        return None

    def _gather_inputs(self, run: _Run, node_id: str) -> dict[str, Any]:
        node = run.item.prompt[node_id]
        node_class = NODE_CLASSES[node["class_type"]]
        types = node_class.input_types(self.storage)
        declared = [*types.get("required", {}), *types.get("optional", {})]
        values: dict[str, Any] = {}
        for name in declared:
            if name not in node["inputs"]:
                continue
            value = node["inputs"][name]
            if is_link(value):
                source, socket = value
                values[name] = self._cache[run.keys[source]].outputs[socket]
            else:
                values[name] = value
        return values

    def _report_failure(self, run: _Run, node_id: str, details: dict[str, Any], ex: BaseException) -> None:
        message = {
            "prompt_id": run.item.prompt_id,
            "node_id": node_id,
            "node_type": run.item.prompt[node_id]["class_type"],
            "executed": list(run.executed),
        }
        if isinstance(ex, InterruptProcessingError):
            self._add_message(run, "execution_interrupted", message, broadcast=True)
            return
        message.update(details)
        message["current_outputs"] = list(run.item.prompt)
        self._add_message(run, "execution_error", message, broadcast=False)
