"""2. Keeping the GPU busy: a backlog of fixed-length jobs on one runner, with prefetch on and off.

The jobs are queued before the runner starts, so it always has work. From the simulator's history:
each prompt's execution window, ComfyUI's idle gap between one prompt's ``execution_success`` and the
next one's ``execution_start``, and throughput over the span from the first start to the last success,
against the limit of one job per mean execution time.

Part of a gap can be ComfyUI's own: its garbage collection after a prompt (at most once per interval;
the simulator logs each pause). The rest is the runner's: a gap splits into the two.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

from bench.harness import Bench
from bench.stats import ratio, summary
from bench.workflows import sampler


def _backlog(bench: Bench, jobs: int, steps: int, prefetch: int) -> dict[str, Any]:
    bench.stop_runners()
    bench.purge_queue()
    session = bench.client()
    job_ids = [bench.submit(session, sampler(steps, random.randrange(2**32))) for _ in range(jobs)]
    bench.start_runner(prefetch)
    bench.wait_terminal(session, job_ids, timeout=60 + jobs * steps * 0.5)
    bench.stop_runners()
    windows = sorted(w for w in (bench.execution(job_id) for job_id in job_ids) if w is not None)
    durations = [end - start for start, end in windows]
    gaps = [nxt[0] - prev[1] for prev, nxt in itertools.pairwise(windows)]
    pauses = bench.gc_pauses()
    comfyui_own = [
        sum(_overlap((prev[1], nxt[0]), pause) for pause in pauses)
        for prev, nxt in itertools.pairwise(windows)
    ]
    runner_own = [gap - own for gap, own in zip(gaps, comfyui_own, strict=True)]
    span = windows[-1][1] - windows[0][0] if windows else 0.0
    mean_duration = sum(durations) / len(durations) if durations else 0.0
    throughput = len(windows) / span if span > 0 else 0.0
    limit = 1 / mean_duration if mean_duration > 0 else 0.0
    return {
        "prefetch": prefetch,
        "jobs": len(windows),
        "execution_ms": summary(durations, 1000),
        "idle_gap_ms": summary(gaps, 1000),
        "runner_gap_ms": summary(runner_own, 1000),
        "comfyui_gc_pause_ms": summary([own for own in comfyui_own if own > 0], 1000),
        "gaps_with_gc_pause": sum(1 for own in comfyui_own if own > 0),
        "throughput_jobs_per_s": round(throughput, 3),
        "limit_jobs_per_s": round(limit, 3),
        "throughput_of_limit": ratio(throughput, limit, 3),
        "comfyui_busy_fraction": ratio(sum(durations), span, 3),
    }


def _overlap(gap: tuple[float, float], pause: tuple[float, float]) -> float:
    return max(0.0, min(gap[1], pause[1]) - max(gap[0], pause[0]))


def run(bench: Bench, jobs: int, steps: int, step_delay: float) -> dict[str, Any]:
    return {
        "steps": steps,
        "step_delay_s": step_delay,
        "prefetch_on": _backlog(bench, jobs, steps, prefetch=1),
        "prefetch_off": _backlog(bench, jobs, steps, prefetch=0),
    }
