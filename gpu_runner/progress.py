"""The whole job's percent done, over the nodes that will actually run, never going back."""

from __future__ import annotations

from typing import Any

from shared.workflow import is_link


def nodes_that_run(graph: dict[str, Any], output_classes: set[str] | None) -> set[str]:
    """Output nodes and everything they depend on; every node when output classes are unknown."""
    if not output_classes:
        return set(graph)
    wanted = [node_id for node_id, node in graph.items() if node.get("class_type") in output_classes]
    if not wanted:
        return set(graph)
    seen: set[str] = set()
    while wanted:
        node_id = wanted.pop()
        if node_id in seen or node_id not in graph:
            continue
        seen.add(node_id)
        for value in (graph[node_id].get("inputs") or {}).values():
            if is_link(value):
                wanted.append(value[0])
    return seen


class ProgressTracker:
    def __init__(self, will_run: set[str], floor: float = 0.0) -> None:
        self._will_run = set(will_run)
        self._done: set[str] = set()
        self._current: str | None = None
        self._fraction = 0.0
        # What earlier attempts reached: a retry repeats work, but the job's percent never goes back.
        self._percent = floor

    @property
    def percent(self) -> float:
        return self._percent

    def cached(self, nodes: list[str]) -> float:
        self._will_run.difference_update(nodes)
        return self._update()

    def executing(self, node_id: str) -> float:
        if self._current is not None:
            self._done.add(self._current)
        self._current, self._fraction = node_id, 0.0
        return self._update()

    def progress(self, node_id: str, value: float, maximum: float) -> float:
        if node_id != self._current:
            self.executing(node_id)
        self._fraction = max(0.0, min(1.0, value / maximum)) if maximum > 0 else 0.0
        return self._update()

    def executed(self, node_id: str) -> float:
        self._done.add(node_id)
        if self._current == node_id:
            self._current, self._fraction = None, 0.0
        return self._update()

    def _update(self) -> float:
        total = len(self._will_run)
        if total == 0:
            return self._percent
        done = len(self._done & self._will_run)
        partial = (
            self._fraction if self._current in self._will_run and self._current not in self._done else 0.0
        )
        # Stop short of 100 until the job has actually succeeded.
        value = min(99.0, 100.0 * (done + partial) / total)
        self._percent = max(self._percent, round(value, 1))
        return self._percent
