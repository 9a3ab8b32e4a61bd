"""GPU utilisation and memory from ``nvidia-smi``, as CloudWatch EMF lines on stdout (like the job metrics).

Runs beside the runner's loop. Where the runner's container has no ``nvidia-smi`` or sees no GPU (on ECS
the GPU is handed to the ComfyUI container), it reports the memory of the GPU ComfyUI uses, from
ComfyUI's ``/system_stats``, instead; utilisation is only in ``nvidia-smi``. With no CUDA device either
(a laptop, the local stack's simulator) it emits nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from gpu_runner.log import logger
from shared.names import METRICS_NAMESPACE, SERVICE_NAME, GpuMetric

QUERY = ("index", "utilization.gpu", "memory.used", "memory.total")
COMMAND = ("nvidia-smi", f"--query-gpu={','.join(QUERY)}", "--format=csv")
COMMAND_TIMEOUT_SECONDS = 10.0

Run = Callable[..., "subprocess.CompletedProcess[str]"]
SystemStats = Callable[[], Awaitable[dict[str, Any]]]
_MIB = 1024 * 1024


class NoGpu(Exception):
    """nvidia-smi is not there, or sees no GPU: nothing to report, now or later."""


@dataclass(frozen=True)
class GpuSample:
    index: int
    # None: not known (ComfyUI reports memory only).
    utilization_percent: float | None
    memory_used_mib: float
    memory_total_mib: float

    @property
    def memory_percent(self) -> float:
        return 100.0 * self.memory_used_mib / self.memory_total_mib if self.memory_total_mib else 0.0


def _number(value: str) -> float | None:
    """``37 %`` or ``10240 MiB`` -> the number; ``[N/A]`` (a GPU that cannot tell) -> None."""
    try:
        return float(value.split()[0])
    except (IndexError, ValueError):
        return None


def parse(csv_text: str) -> list[GpuSample]:
    """nvidia-smi's ``--format=csv`` answer (a header with units, one line per GPU) -> samples."""
    lines = [line for line in csv_text.splitlines() if line.strip()]
    if not lines:
        return []
    header = [name.strip().split(" [")[0] for name in lines[0].split(",")]
    samples = []
    for line in lines[1:]:
        fields = dict(zip(header, (value.strip() for value in line.split(",")), strict=False))
        values = [_number(fields.get(name, "")) for name in QUERY]
        if any(value is None for value in values):
            continue
        index, utilization, used, total = (float(v) for v in values if v is not None)
        samples.append(GpuSample(int(index), utilization, used, total))
    return samples


def read(run: Run = subprocess.run) -> list[GpuSample]:
    """The GPUs this process sees; NoGpu when there is nothing to see."""
    try:
        answer = run(list(COMMAND), capture_output=True, text=True, timeout=COMMAND_TIMEOUT_SECONDS)
    except (FileNotFoundError, PermissionError) as error:
        raise NoGpu(str(error)) from error
    except subprocess.TimeoutExpired:
        logger.warning("nvidia-smi did not answer", extra={"timeout_seconds": COMMAND_TIMEOUT_SECONDS})
        return []
    if answer.returncode != 0:
        # No driver or no device: "NVIDIA-SMI has failed because it couldn't communicate with the driver".
        raise NoGpu((answer.stderr or answer.stdout).strip()[:300])
    return parse(answer.stdout)


def from_system_stats(stats: dict[str, Any]) -> list[GpuSample]:
    """The CUDA devices in ComfyUI's ``/system_stats`` (``vram_total``/``vram_free``: the whole device's)."""
    samples = []
    for position, device in enumerate(stats.get("devices") or []):
        if not isinstance(device, dict) or device.get("type") != "cuda":
            continue
        total, free = device.get("vram_total"), device.get("vram_free")
        if not isinstance(total, int | float) or not isinstance(free, int | float) or total <= 0:
            continue
        index = device.get("index")
        samples.append(
            GpuSample(
                index=index if isinstance(index, int) else position,
                utilization_percent=None,
                memory_used_mib=(total - free) / _MIB,
                memory_total_mib=total / _MIB,
            )
        )
    return samples


def emit(samples: list[GpuSample]) -> None:
    """One EMF document: each GPU's utilisation and memory (values of the same metrics)."""
    if not samples:
        return
    # Its own metric set: Metrics instances share one, so the job and GPU documents would mix.
    metrics = EphemeralMetrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)
    for sample in samples:
        if sample.utilization_percent is not None:
            metrics.add_metric(
                name=GpuMetric.UTILIZATION, unit=MetricUnit.Percent, value=sample.utilization_percent
            )
        metrics.add_metric(
            name=GpuMetric.MEMORY_USED_MIB, unit=MetricUnit.Megabytes, value=sample.memory_used_mib
        )
        metrics.add_metric(
            name=GpuMetric.MEMORY_UTILIZATION, unit=MetricUnit.Percent, value=sample.memory_percent
        )
    metrics.flush_metrics()


async def report_forever(
    interval_seconds: float,
    stopping: asyncio.Event,
    system_stats: SystemStats | None = None,
    run: Run = subprocess.run,
) -> None:
    """Every ``interval_seconds`` until ``stopping``; returns at once when there is nothing to report."""
    if interval_seconds <= 0:
        return
    use_nvidia_smi = True
    while not stopping.is_set():
        samples: list[GpuSample] = []
        if use_nvidia_smi:
            try:
                samples = await asyncio.to_thread(read, run)
            except NoGpu as error:
                logger.info("nvidia-smi sees no GPU here", extra={"reason": str(error)})
                use_nvidia_smi = False
        if not use_nvidia_smi:
            if system_stats is None:
                return
            try:
                samples = from_system_stats(await system_stats())
            except Exception as error:  # ComfyUI down or restarting: the runner's own loop deals with it
                logger.debug("no system_stats for GPU metrics", extra={"error": repr(error)})
        emit(samples)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), interval_seconds)
