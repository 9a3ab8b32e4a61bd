from __future__ import annotations

import json

import pytest

from gpu_runner import job_metrics
from gpu_runner.follow import OutcomeKind, PromptOutcome
from shared.models import Job, JobStatus, JobTimings


def test_a_finished_job_emits_its_count_and_timings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED")
    job = Job(
        job_id="j",
        owner="o",
        status=JobStatus.SUCCEEDED,
        created_at=1_000,
        updated_at=9_000,
        started_at=3_000,
        finished_at=9_000,
    )
    job_metrics.emit(job, PromptOutcome(OutcomeKind.SUCCESS, started_ms=3_100, finished_ms=8_100))
    document = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert document["JobsSucceeded"] == [1.0] or document["JobsSucceeded"] == 1.0
    assert document["QueueWaitMs"] in (2000.0, [2000.0])
    assert document["RunTimeMs"] in (6000.0, [6000.0])
    # 8 s from submit to the terminal write, 5 s of it inside ComfyUI.
    assert document["OrchestrationOverheadMs"] in (3000.0, [3000.0])
    assert document["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "ComfyApiService"


def test_a_job_that_never_ran_emits_no_timings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED")
    job = Job(job_id="j", owner="o", status=JobStatus.CANCELED, created_at=1, updated_at=2, finished_at=2)
    job_metrics.emit(job, None)
    document = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "JobsCanceled" in document and "RunTimeMs" not in document


def test_a_finished_job_emits_its_timings_and_gpu_cost(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED")
    job = Job(
        job_id="j",
        owner="o",
        status=JobStatus.SUCCEEDED,
        created_at=1_000,
        updated_at=9_000,
        timings=JobTimings(queued_ms=2_000, execution_ms=5_000, upload_ms=400),
        gpu_seconds=5.4,
        gpu_cost_usd=0.0015,
    )
    job_metrics.emit(job, None)
    document = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert document["QueuedMs"] in (2000.0, [2000.0])
    assert document["ExecutionMs"] in (5000.0, [5000.0])
    assert document["UploadMs"] in (400.0, [400.0])
    assert "ModelFetchMs" not in document  # no fetch measured: no value rather than a zero
    assert document["GpuSeconds"] in (5.4, [5.4])
    assert document["GpuCostUsd"] in (0.0015, [0.0015])
