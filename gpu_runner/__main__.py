"""``python -m gpu_runner``: one runner beside one ComfyUI, until SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import signal

from gpu_runner.gpu_metrics import report_forever as report_gpu_metrics
from gpu_runner.log import logger
from gpu_runner.runner import Runner
from shared.settings import RunnerSettings


async def main() -> None:
    settings = RunnerSettings()
    logger.setLevel(settings.log_level)
    runner = Runner(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, runner.request_stop)
    logger.info(
        "runner starting",
        extra={
            "runner_id": settings.runner_id,
            "comfyui_url": settings.comfyui_url,
            "queue": settings.jobs_queue_url,
        },
    )
    stopping = asyncio.Event()
    gpu_metrics = asyncio.create_task(
        report_gpu_metrics(settings.gpu_metrics_interval_seconds, stopping, runner.comfy.system_stats),
        name="gpu-metrics",
    )
    try:
        await runner.run()
    finally:
        # Nothing to flush: a sample in flight (a slow nvidia-smi or ComfyUI) must not delay the stop.
        stopping.set()
        gpu_metrics.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await gpu_metrics
    logger.info("runner stopped", extra={"jobs_handled": runner.jobs_handled})


if __name__ == "__main__":
    asyncio.run(main())
