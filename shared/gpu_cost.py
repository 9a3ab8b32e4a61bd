"""A job's GPU cost: the seconds it held the GPU times the instance's hourly price."""

from __future__ import annotations

from dataclasses import dataclass

from shared.models import JobTimings


@dataclass(frozen=True)
class AttemptCost:
    """What the attempt that ended a job measured, as written with its terminal state."""

    timings: JobTimings
    gpu_seconds: float
    gpu_cost_usd: float


def gpu_cost(timings: JobTimings, price_per_hour: float) -> AttemptCost:
    """The GPU is the job's for its model fetch, ComfyUI's execution and its upload; not its queue wait."""
    held_ms = sum(part or 0 for part in (timings.models_ms, timings.execution_ms, timings.upload_ms))
    seconds = held_ms / 1000
    return AttemptCost(timings, round(seconds, 3), round(seconds * price_per_hour / 3600, 8))
