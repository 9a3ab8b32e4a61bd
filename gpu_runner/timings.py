"""Where one attempt's time went, and what its GPU time cost.

The GPU is the job's for its model fetch, ComfyUI's execution and the upload of its outputs: those
seconds, times the instance's hourly price (``GPU_PRICE_PER_HOUR``, from the stack's configuration),
are the job's GPU cost. The queue wait costs no GPU time.
"""

from __future__ import annotations

import time

from shared.gpu_cost import AttemptCost, gpu_cost
from shared.models import Job, JobTimings


def _now_ms() -> int:
    return int(time.time() * 1000)


class AttemptClock:
    """Stamps one attempt's stages as the runner passes them."""

    def __init__(self, job: Job, price_per_hour: float) -> None:
        self._price = price_per_hour
        self.claimed_ms = _now_ms()
        self._queued_ms = max(0, self.claimed_ms - job.created_at)
        # A model fetch, when the runner makes one, sets its own duration here.
        self.models_ms: int | None = job.timings.models_ms if job.timings else None
        self.execution_ms: int | None = None
        self._upload_started: int | None = None
        self.upload_ms: int | None = None

    def executed(self, started_ms: int | None, finished_ms: int | None) -> None:
        """ComfyUI's own start and end of the prompt (its timestamps, epoch ms)."""
        if started_ms is not None and finished_ms is not None:
            self.execution_ms = max(0, finished_ms - started_ms)

    def upload_started(self) -> None:
        self._upload_started = _now_ms()

    def upload_finished(self) -> None:
        if self._upload_started is not None:
            self.upload_ms = max(0, _now_ms() - self._upload_started)

    def result(self) -> AttemptCost:
        timings = JobTimings(
            queued_ms=self._queued_ms,
            models_ms=self.models_ms,
            execution_ms=self.execution_ms,
            upload_ms=self.upload_ms,
        )
        return gpu_cost(timings, self._price)
