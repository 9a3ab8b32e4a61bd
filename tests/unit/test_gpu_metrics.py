"""GPU metrics from nvidia-smi's CSV answer, as EMF; nothing at all where there is no GPU."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from gpu_runner.gpu_metrics import (
    COMMAND,
    GpuSample,
    NoGpu,
    emit,
    from_system_stats,
    parse,
    read,
    report_forever,
)
from shared.names import METRICS_NAMESPACE, GpuMetric
from tests.conftest import PROTOCOL_DIR

DATA = Path(__file__).parent / "data"
NO_DRIVER = (
    "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
    "Make sure that the latest NVIDIA driver is installed and running.\n"
)


def _nvidia_smi(stdout: str = "", returncode: int = 0, stderr: str = "") -> Any:
    def run(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        assert tuple(command) == COMMAND
        return subprocess.CompletedProcess(command, returncode, stdout, stderr)

    return run


@pytest.fixture(autouse=True)
def _metrics_on(monkeypatch: pytest.MonkeyPatch) -> None:
    # The test suite turns metrics off everywhere; here they are what is tested.
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)


def _documents(captured: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in captured.splitlines() if line.startswith("{")]


def test_one_gpu_is_read_from_its_csv_answer() -> None:
    (sample,) = parse((DATA / "nvidia-smi-g5.xlarge.csv").read_text())
    assert sample == GpuSample(index=0, utilization_percent=97, memory_used_mib=17346, memory_total_mib=23028)
    assert sample.memory_percent == pytest.approx(75.33, abs=0.01)


def test_a_gpu_that_cannot_tell_is_left_out_and_the_others_kept() -> None:
    samples = parse((DATA / "nvidia-smi-g5.12xlarge.csv").read_text())
    assert [s.index for s in samples] == [0, 1, 3]
    assert [s.utilization_percent for s in samples] == [100, 0, 43]


def test_the_samples_become_one_emf_document_in_the_service_namespace(
    capsys: pytest.CaptureFixture[str],
) -> None:
    emit(read(_nvidia_smi((DATA / "nvidia-smi-g5.12xlarge.csv").read_text())))
    (document,) = _documents(capsys.readouterr().out)
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == METRICS_NAMESPACE
    units = {m["Name"]: m["Unit"] for m in directive["Metrics"]}
    assert units == {
        GpuMetric.UTILIZATION: "Percent",
        GpuMetric.MEMORY_USED_MIB: "Megabytes",
        GpuMetric.MEMORY_UTILIZATION: "Percent",
    }
    assert document[GpuMetric.UTILIZATION] == [100.0, 0.0, 43.0]
    assert document[GpuMetric.MEMORY_USED_MIB] == [21824.0, 4.0, 9871.0]
    assert directive["Dimensions"] == [["service"]]


def test_without_nvidia_smi_or_a_driver_there_is_no_gpu(capsys: pytest.CaptureFixture[str]) -> None:
    def missing(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        raise FileNotFoundError(2, "No such file or directory", "nvidia-smi")

    for run in (missing, _nvidia_smi(returncode=9, stdout=NO_DRIVER)):
        with pytest.raises(NoGpu):
            read(run)
    emit([])
    assert _documents(capsys.readouterr().out) == []


def test_the_reporter_emits_nothing_and_stops_where_there_is_no_gpu(
    capsys: pytest.CaptureFixture[str],
) -> None:
    calls = []

    def no_driver(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        calls.append(command)
        return _nvidia_smi(returncode=9, stdout=NO_DRIVER)(command, **kwargs)

    # It returns on its own (no stop requested): no GPU now is no GPU later.
    asyncio.run(asyncio.wait_for(report_forever(0.01, asyncio.Event(), None, no_driver), 5))
    assert len(calls) == 1
    assert _documents(capsys.readouterr().out) == []


def test_the_reporter_reports_until_asked_to_stop(capsys: pytest.CaptureFixture[str]) -> None:
    answer = (DATA / "nvidia-smi-g5.xlarge.csv").read_text()

    async def scenario() -> None:
        stopping = asyncio.Event()
        task = asyncio.create_task(report_forever(0.01, stopping, None, _nvidia_smi(answer)))
        while len(_documents(capsys.readouterr().out)) < 1:
            await asyncio.sleep(0.01)
        stopping.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(scenario())


def _recorded_system_stats() -> dict[str, Any]:
    """ComfyUI's /system_stats as recorded (a CPU-only ComfyUI)."""
    transcript = PROTOCOL_DIR / "transcripts" / "transcript-endpoints.jsonl"
    for line in transcript.read_text().splitlines():
        exchange = json.loads(line)
        if exchange.get("path") == "/system_stats":
            answer: dict[str, Any] = exchange["resp"]
            return answer
    raise AssertionError("no /system_stats in the transcript")


def _on_a10g(stats: dict[str, Any]) -> dict[str, Any]:
    """The recorded answer with its device as ComfyUI describes a CUDA one (total and free in bytes)."""
    device = {
        **stats["devices"][0],
        "name": "cuda:0 NVIDIA A10G : cudaMallocAsync",
        "type": "cuda",
        "index": 0,
        "vram_total": 23_836_098_560,
        "vram_free": 5_646_450_688,
    }
    return {**stats, "devices": [device]}


def test_comfyuis_system_stats_give_the_memory_of_its_cuda_devices_only() -> None:
    recorded = _recorded_system_stats()
    assert recorded["devices"][0]["type"] == "cpu"
    assert from_system_stats(recorded) == []
    (sample,) = from_system_stats(_on_a10g(recorded))
    assert sample.utilization_percent is None
    assert sample.memory_total_mib == pytest.approx(22732, abs=1)
    assert sample.memory_percent == pytest.approx(76.3, abs=0.1)


def test_without_nvidia_smi_the_reporter_falls_back_to_comfyuis_memory(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def no_driver(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return _nvidia_smi(returncode=9, stdout=NO_DRIVER)(command, **kwargs)

    async def system_stats() -> dict[str, Any]:
        return _on_a10g(_recorded_system_stats())

    async def scenario() -> None:
        stopping = asyncio.Event()
        task = asyncio.create_task(report_forever(0.01, stopping, system_stats, no_driver))
        while not _documents(capsys.readouterr().out):
            await asyncio.sleep(0.01)
        stopping.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(scenario())


def test_the_memory_only_document_has_no_utilisation(capsys: pytest.CaptureFixture[str]) -> None:
    emit(from_system_stats(_on_a10g(_recorded_system_stats())))
    (document,) = _documents(capsys.readouterr().out)
    assert GpuMetric.UTILIZATION not in document
    assert document[GpuMetric.MEMORY_UTILIZATION] == [pytest.approx(76.3, abs=0.1)]
