"""4. Progress latency: from the simulator's ``progress`` frame to the client's ``job.progress`` frame.

The simulator runs with an observer (``bench.sim_observer``) that logs the wall-clock time at which it
hands each ``progress`` frame to its socket; the client stamps each ``job.progress`` frame as it arrives.
A client frame is matched to the simulator frame of the same prompt, node and step value, so the figure
includes the runner's coalescing (at most one frame per 100 ms per job: a step may wait for its slot,
and steps in between are never sent), its fan-out, the @connections post and the socket.
"""

from __future__ import annotations

import random
from typing import Any

from bench.harness import Bench
from bench.stats import summary
from bench.workflows import sampler
from gpu_runner.job import prompt_id_for


def run(bench: Bench, jobs: int, steps: int, step_delay: float) -> dict[str, Any]:
    bench.ensure_runner()
    session = bench.client()
    socket = bench.socket()
    arrivals: list[tuple[tuple[str, str, float], float]] = []
    for _ in range(jobs):
        job_id = bench.submit(session, sampler(steps, random.randrange(2**32)))
        socket.subscribe(job_id)
        if socket.wait_terminal(job_id, 30 + steps * step_delay * 4) is None:
            continue
        prompt_id = prompt_id_for(job_id, 1)
        for at, frame in socket.frames(job_id):
            if frame.get("type") == "job.progress":
                arrivals.append(((prompt_id, str(frame["node_id"]), float(frame["value"])), at))
    socket.close()
    sent = bench.progress_sends()
    # The runner's "executing" frames (value 0 of 1) have no simulator progress frame to match.
    latencies = [at - sent[key] for key, at in arrivals if key in sent]
    prompts = {key[0] for key, _ in arrivals}
    simulator_frames = sum(1 for key in sent if key[0] in prompts)
    return {
        "jobs": jobs,
        "steps": steps,
        "step_delay_s": step_delay,
        "latency_ms": summary(latencies, 1000),
        "client_progress_frames": len(arrivals),
        "matched_frames": len(latencies),
        "simulator_progress_frames": simulator_frames,
    }
