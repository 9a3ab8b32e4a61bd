from __future__ import annotations

import time

import pytest

from gpu_runner.timings import AttemptClock
from shared.gpu_cost import gpu_cost
from shared.models import Job, JobTimings


def test_gpu_cost_counts_the_parts_that_hold_the_gpu_not_the_queue() -> None:
    timings = JobTimings(queued_ms=60_000, models_ms=12_000, execution_ms=40_000, upload_ms=8_000)
    cost = gpu_cost(timings, price_per_hour=3.6)
    assert cost.gpu_seconds == 60.0
    assert cost.gpu_cost_usd == pytest.approx(0.06)
    assert cost.timings is timings


def test_gpu_cost_of_a_job_with_nothing_measured_is_zero() -> None:
    cost = gpu_cost(JobTimings(queued_ms=5), price_per_hour=1.0)
    assert (cost.gpu_seconds, cost.gpu_cost_usd) == (0.0, 0.0)


def test_the_clock_splits_an_attempt_and_keeps_a_model_fetch_measured_before_it() -> None:
    created = int(time.time() * 1000) - 3_000
    job = Job(
        job_id="j", owner="o", created_at=created, updated_at=created, timings=JobTimings(models_ms=700)
    )
    clock = AttemptClock(job, price_per_hour=36.0)
    clock.executed(10_000, 12_500)
    clock.upload_started()
    clock.upload_finished()
    result = clock.result()
    assert result.timings.queued_ms is not None and 3_000 <= result.timings.queued_ms < 60_000
    assert result.timings.models_ms == 700
    assert result.timings.execution_ms == 2_500
    assert result.timings.upload_ms is not None and result.timings.upload_ms >= 0
    assert result.gpu_seconds == pytest.approx((3_200 + result.timings.upload_ms) / 1000)
    assert result.gpu_cost_usd == pytest.approx(result.gpu_seconds * 36.0 / 3600)


def test_the_clock_reports_no_execution_when_comfyui_gave_no_times() -> None:
    job = Job(job_id="j", owner="o", created_at=0, updated_at=0)
    clock = AttemptClock(job, price_per_hour=1.0)
    clock.executed(None, 5)
    assert clock.result().timings.execution_ms is None
