"""Render node inputs the way ComfyUI reports them in ``execution_error.current_inputs``.

Images travel as lists of float32 numpy arrays here, while ComfyUI holds torch tensors; error reports print
them in torch's summarised style so that clients see the same kind of text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

EDGE_ITEMS = 3
SUMMARY_THRESHOLD = 1000


def _indices(size: int, summarize: bool) -> list[int | None]:
    """Positions printed along one axis; None stands for the '...' gap."""
    if summarize and size > 2 * EDGE_ITEMS:
        return [*range(EDGE_ITEMS), None, *range(size - EDGE_ITEMS, size)]
    return list(range(size))


def _shown_values(
    shape: Sequence[int], get: Callable[[tuple[int, ...]], float], summarize: bool
) -> list[float]:
    values: list[float] = []

    def walk(prefix: tuple[int, ...]) -> None:
        if len(prefix) == len(shape):
            values.append(get(prefix))
            return
        for i in _indices(shape[len(prefix)], summarize):
            if i is not None:
                walk((*prefix, i))

    walk(())
    return values


def _formatter(values: list[float]) -> Callable[[float], str]:
    nonzero = [v for v in values if v != 0]
    if nonzero and any(v != int(v) for v in nonzero):
        width = max(len(f"{v:.4f}") for v in nonzero)
        return lambda v: f"{v:.4f}".rjust(width)
    width = max([len(f"{v:.0f}") + 1 for v in nonzero] or [1])
    return lambda v: f"{v:.0f}.".rjust(width)


def tensor_repr(shape: Sequence[int], get: Callable[[tuple[int, ...]], float]) -> str:
    """torch-style ``tensor([...])`` text for a float tensor of ``shape`` read through ``get``."""
    numel = 1
    for size in shape:
        numel *= size
    summarize = numel > SUMMARY_THRESHOLD
    fmt = _formatter(_shown_values(shape, get, summarize))

    def render(prefix: tuple[int, ...], indent: int) -> str:
        dim = len(shape) - len(prefix)
        parts: list[str] = []
        for i in _indices(shape[len(prefix)], summarize):
            if i is None:
                parts.append("..." if dim > 1 else " ...")
            elif dim == 1:
                parts.append(fmt(get((*prefix, i))))
            else:
                parts.append(render((*prefix, i), indent + 1))
        joiner = ", " if dim == 1 else "," + "\n" * (dim - 1) + " " * (indent + 1)
        return "[" + joiner.join(parts) + "]"

    return "tensor(" + render((), len("tensor(")) + ")"


def batch_repr(arrays: Sequence[NDArray[np.float32]]) -> str:
    """A batch of images ([B,H,W,C]) or masks ([B,H,W]) as torch prints the tensor."""
    shape = (len(arrays), *arrays[0].shape)

    def get(index: tuple[int, ...]) -> float:
        return float(arrays[index[0]][index[1:]])

    return tensor_repr(shape, get)


def format_value(value: Any) -> Any:
    """Primitives pass through, everything else becomes text, as ComfyUI's format_value does."""
    if value is None or isinstance(value, (int, float, bool, str)):
        return value
    if isinstance(value, list) and value and all(isinstance(v, np.ndarray) for v in value):
        return batch_repr(value)
    return str(value)
