"""The workflows the benchmark runs: near-zero work, and a sampler of a fixed simulated length."""

from __future__ import annotations

import itertools
from typing import Any

_colour = itertools.count(1)
CHECKPOINT = "v1-5-pruned-emaonly.safetensors"


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
    """A small text-to-image graph: its time is ``steps`` times the simulator's step delay, plus a decode.

    The seed differs per job so the sampler always runs; the loaders are cached after the first job.
    """
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CHECKPOINT}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a lighthouse", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
        "3": {
            "class_type": "KSampler",
            "inputs": {
                "seed": seed,
                "steps": steps,
                "cfg": 7.0,
                "sampler_name": "euler",
                "scheduler": "normal",
                "denoise": 1.0,
                "model": ["4", 0],
                "positive": ["6", 0],
                "negative": ["7", 0],
                "latent_image": ["5", 0],
            },
        },
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "bench", "images": ["8", 0]}},
    }
