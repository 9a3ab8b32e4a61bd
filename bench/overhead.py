"""1. Orchestration overhead per job, beside the floor of the AWS calls the path makes.

For each near-zero job, one after another: POST /v1/jobs, subscribe at once on an open WebSocket (the
snapshot covers the gap), and wait for the terminal ``job.status`` frame. The time from just before the
POST to that frame's arrival, minus ComfyUI's own execution (``execution_success`` minus
``execution_start`` from the simulator's history), is the overhead. The calls the path really makes are
counted at moto and at the @connections API over the same jobs.
"""

from __future__ import annotations

import time
from typing import Any

from bench.counters import Call, dynamodb_writes, per_job
from bench.floor import PATH_CALLS, Floor
from bench.harness import Bench
from bench.stats import ratio, summary
from bench.workflows import near_zero


def run(bench: Bench, jobs: int) -> dict[str, Any]:
    bench.ensure_runner()
    session = bench.client()
    socket = bench.socket()
    warm = bench.submit(session, near_zero())  # the first job warms imports and connections
    socket.subscribe(warm)
    if socket.wait_terminal(warm, 60) is None:
        raise TimeoutError("the warm-up job did not finish")
    connection_id = bench.connection_of(socket, warm)

    totals: list[float] = []
    overheads: list[float] = []
    submits: list[float] = []
    to_start: list[float] = []
    executions: list[float] = []
    after: list[float] = []
    floor = Floor(bench, connection_id)  # posts to the socket above, as the path posts to it
    floor_times: list[float] = []
    calls: list[Call] = []
    posts: list[tuple[str, int]] = []
    for _ in range(jobs):
        call_mark, post_mark = bench.calls.mark(), bench.posts.mark()
        started = time.time()
        job_id = bench.submit(session, near_zero())
        submitted = time.time()
        socket.subscribe(job_id)
        arrived = socket.wait_terminal(job_id, 30)
        window = bench.execution(job_id)
        socket.forget(job_id)
        calls += bench.calls.since(call_mark)
        posts += bench.posts.since(post_mark)
        # Alternated with the jobs, so the floor sees tables of the same size.
        floor_times.append(floor.path_once())
        if arrived is None or window is None:
            continue
        total = arrived - started
        execution = window[1] - window[0]
        totals.append(total)
        executions.append(execution)
        overheads.append(total - execution)
        submits.append(submitted - started)
        to_start.append(window[0] - started)
        after.append(arrived - window[1])
    socket.close()
    background = bench.background()
    writes, items = dynamodb_writes(calls, background)
    overhead, floor_summary = summary(overheads, 1000), summary(floor_times, 1000)
    return {
        "jobs": len(totals),
        "terminal_frames_missing": jobs - len(totals),
        "overhead_ms": overhead,
        "floor_ms": floor_summary,
        "ratio_p50": ratio(overhead["p50"], floor_summary["p50"]),
        "ratio_p95": ratio(overhead["p95"], floor_summary["p95"]),
        "total_ms": summary(totals, 1000),
        "comfyui_execution_ms": summary(executions, 1000),
        "stages_ms": {
            "post_answered": summary(submits, 1000),
            "post_to_execution_start": summary(to_start, 1000),
            "execution_success_to_terminal_frame": summary(after, 1000),
        },
        "floor_calls": PATH_CALLS,
        "calls_per_job": per_job(calls, len(totals), background),
        "dynamodb_write_requests_per_job": round(writes / max(len(totals), 1), 3),
        "dynamodb_items_written_per_job": round(items / max(len(totals), 1), 3),
        "connection_posts_per_job": round(len(posts) / max(len(totals), 1), 3),
    }
