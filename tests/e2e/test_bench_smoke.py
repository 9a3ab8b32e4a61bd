"""The benchmark harness, run small so it never rots. No assertion on any timing beyond being a number."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.e2e.conftest import SHARED_TEMPLATE_ENV

SECTIONS = [
    "cold_start",
    "submit_path",
    "gpu_busy",
    "overhead",
    "progress_latency",
    "cancel_latency",
    "steady_state",
    "model_fetch",
    "webhook_latency",
    "cost",
]


def positive(value: Any) -> bool:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    )


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        cwd=ROOT,
        env={**os.environ, **SHARED_TEMPLATE_ENV, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert Path(out / "bench-quick.md").read_text().count("|") > 20
    return dict(json.loads((out / "bench-quick.json").read_text()))


@pytest.mark.timeout(660)
def test_every_section_is_there_with_positive_numbers(results: dict[str, Any]) -> None:
    machine = results["machine"]
    assert machine["cores"] > 0 and machine["cpu"] and machine["python"] and machine["date"]
    for section in SECTIONS:
        assert positive(results[section]["seconds"]), section
    overhead = results["overhead"]
    for key in ("overhead_ms", "floor_ms", "total_ms", "comfyui_execution_ms"):
        assert all(positive(overhead[key][p]) for p in ("p50", "p95", "p99")), key
    assert positive(overhead["ratio_p50"])
    assert positive(overhead["dynamodb_write_requests_per_job"])
    assert positive(overhead["connection_posts_per_job"])
    # A submission is one conditional put of the job, no transaction.
    operations = {row["operation"] for row in overhead["calls_per_job"]}
    assert "PutItem" in operations and "TransactWriteItems" not in operations
    for mode in ("prefetch_on", "prefetch_off"):
        busy = results["gpu_busy"][mode]
        assert positive(busy["throughput_jobs_per_s"]) and positive(busy["limit_jobs_per_s"])
        assert isinstance(busy["idle_gap_ms"]["p50"], int | float)
        # ComfyUI's own garbage collection pauses are told apart from the runner's part of each gap.
        assert busy["gaps_with_gc_pause"] >= 1 and positive(busy["comfyui_gc_pause_ms"]["p50"])
        assert busy["runner_gap_ms"]["p50"] <= busy["idle_gap_ms"]["p50"]
    submit = results["submit_path"]
    assert positive(submit["handler_ms"]["p50"]) and positive(submit["raw_calls_ms"]["p50"])
    assert positive(submit["emulator_requests_per_s"]) and positive(submit["raw_submits_per_s"])
    progress = results["progress_latency"]
    assert progress["matched_frames"] > 0
    assert isinstance(progress["latency_ms"]["p50"], int | float)
    cancel = results["cancel_latency"]
    assert positive(cancel["running_to_interrupt_ms"]["p50"])
    assert positive(cancel["prefetched_to_queue_delete_ms"]["p50"])
    fetch = results["model_fetch"]
    for key in ("cache_fetch_mib_s", "plain_boto3_get_object_mib_s", "boto3_download_file_mib_s"):
        assert positive(fetch[key]), key
    first, second = fetch["jobs"]
    assert first["status"] == second["status"] == "succeeded"
    # The first job fetched (a HEAD, then ranged GETs); the second found the model in the cache.
    assert first["runner_s3_reads"] >= 2 and second["runner_s3_reads"] == 0
    cold = results["cold_start"]
    assert set(cold["handlers"]) == {"api", "ws", "authorizer", "dlq"}
    for handler in cold["handlers"].values():
        assert positive(handler["process_wall_ms"]) and positive(handler["import_ms"])
    assert len(cold["heaviest_imports"]) == 10
    webhooks = results["webhook_latency"]
    assert webhooks["events_missed"] == 0 and webhooks["deliveries_per_event"] == 1.0
    assert webhooks["all_signatures_verified"] and positive(webhooks["terminal_write_to_2xx_ms"]["p50"])
    cost = results["cost"]
    for client in ("websocket", "websocket-progress", "polling"):
        assert positive(cost[client]["usd_per_million_jobs"]["total"]), client
    steady = results["steady_state"]
    assert positive(steady["rss_first_kib"]) and positive(steady["rss_last_to_first"])
    assert len(steady["rss_samples"]) >= 2
    assert positive(steady["dynamodb_write_requests_per_job"]) and positive(
        steady["connection_posts_per_job"]
    )
