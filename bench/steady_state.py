"""6. Steady state: the runner's memory across many jobs, and the writes and posts each job costs.

A fresh runner works through near-zero jobs kept ``in_flight`` at a time, each watched by
``subscribers`` WebSocket clients. Its resident set size (``VmRSS`` in ``/proc/<pid>/status``) is
sampled every ``sample_every`` jobs; no growth means the last sample over the first is near 1. DynamoDB
writes are counted at moto, @connections posts at the emulator, both by caller.
"""

from __future__ import annotations

from collections import Counter, deque
from pathlib import Path
from typing import Any

from bench.counters import dynamodb_writes, per_job
from bench.harness import RUNNER_APP_ID, Bench
from bench.stats import ratio
from bench.workflows import near_zero


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def run(bench: Bench, jobs: int, sample_every: int, in_flight: int, subscribers: int) -> dict[str, Any]:
    bench.stop_runners()
    runner = bench.start_runner(prefetch=1)
    session = bench.client()
    sockets = [bench.socket() for _ in range(subscribers)]
    samples: list[dict[str, int]] = []
    call_mark, post_mark = bench.calls.mark(), bench.posts.mark()
    frames_before = sum(s.frames_received for s in sockets)
    waiting: deque[str] = deque()
    submitted = finished = missing = 0
    while finished < jobs:
        while submitted < jobs and len(waiting) < in_flight:
            job_id = bench.submit(session, near_zero())
            for socket in sockets:
                socket.subscribe(job_id)
            waiting.append(job_id)
            submitted += 1
        job_id = waiting.popleft()
        for socket in sockets:
            if socket.wait_terminal(job_id, 15) is None:
                # Reported, not fatal: the job may have ended with its frame lost on the way.
                bench.wait_terminal(session, [job_id], timeout=60)
                missing += 1
            socket.forget(job_id)
        finished += 1
        if finished == 1 or finished % sample_every == 0:
            samples.append({"jobs": finished, "rss_kib": rss_kib(runner.pid)})
    calls = bench.calls.since(call_mark)
    posts = bench.posts.since(post_mark)
    frames = sum(s.frames_received for s in sockets) - frames_before
    for socket in sockets:
        socket.close()
    writes, items = dynamodb_writes(calls, bench.background())
    runner_writes, _ = dynamodb_writes([c for c in calls if c.caller == RUNNER_APP_ID], bench.background())
    by_caller = Counter(caller for caller, _ in posts)
    return {
        "jobs": jobs,
        "subscribers_per_job": subscribers,
        "terminal_frames_missing": missing,
        "rss_samples": samples,
        "rss_first_kib": samples[0]["rss_kib"],
        "rss_last_kib": samples[-1]["rss_kib"],
        "rss_last_to_first": ratio(samples[-1]["rss_kib"], samples[0]["rss_kib"], 3),
        "dynamodb_write_requests_per_job": round(writes / jobs, 3),
        "dynamodb_items_written_per_job": round(items / jobs, 3),
        "runner_dynamodb_write_requests_per_job": round(runner_writes / jobs, 3),
        "connection_posts_per_job": round(len(posts) / jobs, 3),
        "connection_posts_per_job_by_caller": {k: round(v / jobs, 3) for k, v in sorted(by_caller.items())},
        "frames_received_per_job_per_subscriber": round(frames / jobs / subscribers, 3),
        "calls_per_job": per_job(calls, jobs, bench.background()),
    }
