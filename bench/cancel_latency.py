"""7. Cancel latency: from ``DELETE /v1/jobs/{id}`` to ComfyUI receiving the request that stops the prompt.

Each round submits a long job and a short one behind it, so the second is prefetched into ComfyUI's
queue while the first runs. The client cancels the prefetched one (timed to the simulator receiving the
``POST /queue`` delete of its prompt), then the running one (timed to ``POST /interrupt``). The simulator
logs each request as it arrives (``bench.sim_observer``), on the same host and wall clock as the client.
The runner hears a cancel from its cancel poll, not from its visibility heartbeat, shown beside it.
"""

from __future__ import annotations

import random
import time
from typing import Any

import requests

from bench.harness import Bench
from bench.stats import summary
from bench.workflows import sampler
from gpu_runner.job import prompt_id_for

POLL = 0.02
# The most steps a template allows: 7.5 s at the default 50 ms a step, longer than any round needs.
LONG_STEPS = 150


def _wait(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(POLL)
    return False


def run(bench: Bench, rounds: int, step_delay: float) -> dict[str, Any]:
    bench.ensure_runner()
    session = bench.client()
    comfyui = bench.stack.comfyui_url
    running_ms: list[float] = []
    prefetched_ms: list[float] = []

    def pending(job_id: str) -> bool:
        queue = requests.get(f"{comfyui}/queue", timeout=5).json()
        return prompt_id_for(job_id, 1) in {item[1] for item in queue["queue_pending"]}

    def cancel(job_id: str) -> float:
        at = time.time()
        session.delete(f"{bench.rest_url}/v1/jobs/{job_id}", timeout=10).raise_for_status()
        return at

    for _ in range(rounds):
        long_job = bench.submit(session, sampler(LONG_STEPS, random.randrange(2**32)))
        short_job = bench.submit(session, sampler(4, random.randrange(2**32)))
        if not _wait(lambda job=short_job: pending(job), 30):
            continue
        time.sleep(random.uniform(0, 1))  # cancels land anywhere in the runner's poll cycle
        sent = cancel(short_job)
        key = ("delete", prompt_id_for(short_job, 1))
        if _wait(lambda key=key: key in bench.stop_requests(), 30):
            prefetched_ms.append(1000 * (bench.stop_requests()[key] - sent))
        time.sleep(random.uniform(0, 1))
        sent = cancel(long_job)
        key = ("interrupt", prompt_id_for(long_job, 1))
        if _wait(lambda key=key: key in bench.stop_requests(), 30):
            running_ms.append(1000 * (bench.stop_requests()[key] - sent))
        bench.wait_terminal(session, [long_job, short_job], 60)
    visibility = bench.stack.settings.visibility_timeout_seconds
    return {
        "rounds": rounds,
        "running_to_interrupt_ms": summary(running_ms, 1),
        "prefetched_to_queue_delete_ms": summary(prefetched_ms, 1),
        "heartbeat_interval_s": round(max(0.3, visibility / 3), 1),
        "cancel_poll_s": 1.0,
    }
