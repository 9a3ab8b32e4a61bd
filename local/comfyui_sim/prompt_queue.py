"""The prompt queue and history, shared by the HTTP handlers and the worker thread."""

from __future__ import annotations

import copy
import heapq
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MAXIMUM_HISTORY_SIZE = 10000


@dataclass(order=True)
class QueueItem:
    """One queued prompt; lower numbers run first, which is how ``front`` jumps the queue."""

    number: float
    prompt_id: str
    seq: int
    prompt: dict[str, Any] = field(compare=False)
    extra_data: dict[str, Any] = field(compare=False)
    outputs: list[str] = field(compare=False)
    sensitive: dict[str, Any] = field(compare=False, default_factory=dict)

    def public(self) -> list[Any]:
        """The five-element form clients see in /queue and /history; sensitive fields stay out."""
        return [self.number, self.prompt_id, self.prompt, self.extra_data, self.outputs]


class PromptQueue:
    def __init__(self, on_change: Callable[[], None]) -> None:
        self._on_change = on_change
        self._lock = threading.RLock()
        self._ready = threading.Condition(self._lock)
        self._heap: list[QueueItem] = []
        self._running: dict[int, QueueItem] = {}
        self._counter = itertools.count()
        self._seq = itertools.count()
        self._history: dict[str, dict[str, Any]] = {}

    def next_seq(self) -> int:
        return next(self._seq)

    def put(self, item: QueueItem) -> None:
        with self._lock:
            heapq.heappush(self._heap, item)
            self._on_change()
            self._ready.notify()

    def get(self, timeout: float) -> tuple[QueueItem, int] | None:
        with self._lock:
            if not self._heap:
                self._ready.wait(timeout)
            if not self._heap:
                return None
            item = heapq.heappop(self._heap)
            item_id = next(self._counter)
            self._running[item_id] = copy.deepcopy(item)
            self._on_change()
            return item, item_id

    def wake(self) -> None:
        with self._lock:
            self._ready.notify_all()

    def task_done(self, item_id: int, result: dict[str, Any], status: dict[str, Any]) -> None:
        with self._lock:
            item = self._running.pop(item_id)
            if len(self._history) > MAXIMUM_HISTORY_SIZE:
                self._history.pop(next(iter(self._history)))
            entry: dict[str, Any] = {"prompt": item.public(), "outputs": {}, "status": status}
            entry.update(result)
            self._history[item.prompt_id] = entry
            self._on_change()

    def remaining(self) -> int:
        with self._lock:
            return len(self._heap) + len(self._running)

    def running_ids(self) -> list[str]:
        with self._lock:
            return [item.prompt_id for item in self._running.values()]

    def snapshot(self) -> tuple[list[list[Any]], list[list[Any]]]:
        with self._lock:
            running = [item.public() for item in self._running.values()]
            return copy.deepcopy(running), copy.deepcopy([item.public() for item in self._heap])

    def wipe(self) -> None:
        with self._lock:
            self._heap = []
            self._on_change()

    def delete(self, prompt_id: str) -> bool:
        """Drop a pending prompt; running or unknown ids are left alone."""
        with self._lock:
            for index, item in enumerate(self._heap):
                if item.prompt_id == prompt_id:
                    if len(self._heap) == 1:
                        self.wipe()
                    else:
                        self._heap.pop(index)
                        heapq.heapify(self._heap)
                        self._on_change()
                    return True
            return False

    def history(
        self, prompt_id: str | None = None, max_items: int | None = None, offset: int = -1
    ) -> dict[str, Any]:
        with self._lock:
            if prompt_id is not None:
                entry = self._history.get(prompt_id)
                return {prompt_id: copy.deepcopy(entry)} if entry is not None else {}
            if offset < 0 and max_items is not None:
                offset = len(self._history) - max_items
            out: dict[str, Any] = {}
            for index, (key, value) in enumerate(self._history.items()):
                if index >= offset:
                    out[key] = copy.deepcopy(value)
                    if max_items is not None and len(out) >= max_items:
                        break
            return out

    def wipe_history(self) -> None:
        with self._lock:
            self._history.clear()

    def delete_history(self, prompt_id: str) -> None:
        with self._lock:
            self._history.pop(prompt_id, None)
