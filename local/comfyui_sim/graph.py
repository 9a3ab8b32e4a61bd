"""Execution order, cache keys and progress bookkeeping, following ComfyUI's execution graph rules."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .nodes import NODE_CLASSES
from .storage import Storage


def is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2


@dataclass
class CacheEntry:
    outputs: tuple[Any, ...]
    ui: dict[str, Any] | None


def signatures(prompt: dict[str, Any], storage: Storage) -> dict[str, str]:
    """A key per node from its class, inputs, is_changed value and, through links, all its ancestors.

    Two prompts whose nodes have equal keys share cached outputs, whatever the node ids are.
    """
    memo: dict[str, str] = {}

    def key(node_id: str) -> str:
        if node_id in memo:
            return memo[node_id]
        memo[node_id] = ""  # a placeholder that stops a cycle; validation has rejected cycles already
        node = prompt[node_id]
        inputs: dict[str, Any] = node.get("inputs", {})
        node_class = NODE_CLASSES[node["class_type"]]
        literals = {k: v for k, v in inputs.items() if not is_link(v)}
        items = []
        for name in sorted(inputs):
            value = inputs[name]
            if is_link(value) and value[0] in prompt:
                items.append([name, ["link", key(value[0]), value[1]]])
            else:
                items.append([name, value])
        changed = node_class.is_changed(storage, literals)
        raw = json.dumps([node["class_type"], repr(changed), items], sort_keys=True, default=str)
        memo[node_id] = hashlib.sha256(raw.encode("utf-8")).hexdigest()
        return memo[node_id]

    return {node_id: key(node_id) for node_id in prompt}


class ExecutionList:
    """Which node runs next: only nodes whose inputs are ready, output nodes first (ComfyUI's UX pick)."""

    def __init__(self, prompt: dict[str, Any], is_cached: Callable[[str], bool]) -> None:
        self.prompt = prompt
        self.is_cached = is_cached
        self.pending: dict[str, bool] = {}
        self.block_count: dict[str, int] = {}
        self.blocking: dict[str, dict[str, set[int]]] = {}

    def add_node(self, root: str) -> None:
        # An explicit stack, as ComfyUI uses, so insertion order (and with it tie-breaking) matches.
        stack = [root]
        links: list[tuple[str, int, str]] = []
        while stack:
            node_id = stack.pop()
            if node_id in self.pending:
                continue
            self.pending[node_id] = True
            self.block_count[node_id] = 0
            self.blocking[node_id] = {}
            for value in self.prompt[node_id]["inputs"].values():
                if is_link(value):
                    source, socket = value
                    if not self.is_cached(source):
                        stack.append(source)
                    links.append((source, socket, node_id))
        for source, socket, target in links:
            if self.is_cached(source):
                continue
            self.add_node(source)
            if target not in self.blocking[source]:
                self.blocking[source][target] = set()
                self.block_count[target] += 1
            self.blocking[source][target].add(socket)

    def is_empty(self) -> bool:
        return not self.pending

    def _is_output(self, node_id: str) -> bool:
        return NODE_CLASSES[self.prompt[node_id]["class_type"]].output_node

    def next_node(self) -> str:
        ready = [n for n in self.pending if self.block_count[n] == 0]
        if not ready:
            raise RuntimeError("Dependency cycle detected")
        for node_id in ready:
            if self._is_output(node_id):
                return node_id
        for node_id in ready:
            if any(self._is_output(b) for b in self.blocking[node_id]):
                return node_id
        for node_id in ready:
            for blocked in self.blocking[node_id]:
                if any(self._is_output(b) for b in self.blocking[blocked]):
                    return node_id
        return ready[0]

    def complete(self, node_id: str) -> None:
        del self.pending[node_id]
        for target in self.blocking.pop(node_id, {}):
            self.block_count[target] -= 1


class ProgressRegistry:
    """Per-node progress; every change sends the cumulative state of every node that is not pending."""

    def __init__(self, prompt_id: str, emit: Callable[[dict[str, Any]], None]) -> None:
        self.prompt_id = prompt_id
        self.emit = emit
        self.nodes: dict[str, dict[str, Any]] = {}

    def _entry(self, node_id: str) -> dict[str, Any]:
        return self.nodes.setdefault(node_id, {"state": "pending", "value": 0, "max": 1})

    def start(self, node_id: str) -> None:
        self._entry(node_id).update(state="running", value=0.0, max=1.0)
        self._send()

    def update(self, node_id: str, value: float, maximum: float) -> None:
        self._entry(node_id).update(state="running", value=value, max=maximum)
        self._send()

    def finish(self, node_id: str) -> None:
        entry = self._entry(node_id)
        entry.update(state="finished", value=entry["max"])
        self._send()

    def _send(self) -> None:
        nodes = {
            node_id: {
                "value": entry["value"],
                "max": entry["max"],
                "state": entry["state"],
                "node_id": node_id,
                "prompt_id": self.prompt_id,
                "display_node_id": node_id,
                "parent_node_id": None,
                "real_node_id": node_id,
            }
            for node_id, entry in self.nodes.items()
            if entry["state"] != "pending"
        }
        self.emit({"prompt_id": self.prompt_id, "nodes": nodes})
