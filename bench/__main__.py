"""``python -m bench [--quick] [--out bench/results] [--only SECTION ...]``."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import (
    cancel_latency,
    cold_start,
    cost,
    gpu_busy,
    model_fetch,
    overhead,
    progress_latency,
    steady_state,
    submit_path,
    webhook_latency,
)
from bench.config import FULL, QUICK, Sizes
from bench.harness import Bench, bench_stack
from bench.machine import describe
from bench.report import write

SECTIONS: dict[str, Callable[[Bench, Sizes], dict[str, Any]]] = {
    # Order matters: the submit path runs while no runner is up, and the backlog needs the queue empty.
    "cold_start": lambda b, s: cold_start.run(b, s.cold_start_runs),
    "submit_path": lambda b, s: submit_path.run(
        b, s.submit_calls, s.submit_clients, s.submit_requests_per_client
    ),
    "gpu_busy": lambda b, s: gpu_busy.run(b, s.busy_jobs, s.busy_steps, s.step_delay),
    "overhead": lambda b, s: overhead.run(b, s.overhead_jobs),
    "progress_latency": lambda b, s: progress_latency.run(b, s.progress_jobs, s.progress_steps, s.step_delay),
    "cancel_latency": lambda b, s: cancel_latency.run(b, s.cancel_rounds, s.step_delay),
    "webhook_latency": lambda b, s: webhook_latency.run(b, s.overhead_jobs),
    "model_fetch": lambda b, s: model_fetch.run(b, s.model_mib),
    "steady_state": lambda b, s: steady_state.run(
        b, s.steady_jobs, s.steady_sample_every, s.steady_in_flight, s.steady_subscribers
    ),
    "cost": lambda b, s: cost.run(b, s.cost_jobs),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run of every section")
    parser.add_argument("--out", default="bench/results", help="where the JSON and markdown go")
    parser.add_argument("--only", nargs="*", choices=sorted(SECTIONS), help="run only these sections")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    sizes = QUICK if args.quick else FULL
    chosen = [name for name in SECTIONS if not args.only or name in args.only]
    results: dict[str, Any] = {"machine": describe(), "mode": "quick" if args.quick else "full"}
    started = time.monotonic()
    with bench_stack(sizes.step_delay, sizes.gc_scale) as bench:
        for name in chosen:
            print(f"bench: {name} ...", flush=True)
            bench.reset()
            section_started = time.monotonic()
            results[name] = SECTIONS[name](bench, sizes)
            results[name]["seconds"] = round(time.monotonic() - section_started, 1)
            print(f"bench: {name} done in {results[name]['seconds']} s", flush=True)
    results["seconds"] = round(time.monotonic() - started, 1)
    json_path, markdown_path = write(results, Path(args.out))
    print(markdown_path.read_text())
    print(f"bench: wrote {json_path} and {markdown_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
