"""The workflows the benchmark runs: near-zero work, and a sampler of a fixed simulated length."""

from __future__ import annotations

import itertools
from typing import Any

from shared.templates import get_template

_colour = itertools.count(1)


def near_zero() -> dict[str, Any]:
    """EmptyImage 8x8 -> SaveImage; a new colour each time so ComfyUI never serves it from its cache."""
    colour = next(_colour) % 0xFFFFFF
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": colour},
        },
        "2": {"class_type": "SaveImage", "inputs": {"filename_prefix": "bench", "images": ["1", 0]}},
    }


def sampler(steps: int, seed: int) -> dict[str, Any]:
    """The shipped txt2img template at 64x64: its time is ``steps`` times the simulator's step delay, plus
    a decode. The seed differs per job so the sampler always runs; the loaders are cached after the first."""
    graph, _ = get_template("txt2img").render(
        {
            "prompt": "a lighthouse",
            "negative_prompt": "blurry",
            "width": 64,
            "height": 64,
            "steps": steps,
            "seed": seed,
        }
    )
    return graph
