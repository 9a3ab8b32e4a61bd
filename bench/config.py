"""How much each measurement does: the full run (``make bench``) and ``--quick`` (the smoke test)."""

from __future__ import annotations

from dataclasses import dataclass

# ComfyUI's garbage collection (10 s interval, about 0.29 s pause) was seen on jobs of this length: it
# paused after every other job. The simulator's interval and pause shrink with the backlog's job length,
# so the benchmark sees the same share.
RECORDED_JOB_SECONDS = 8.0


@dataclass(frozen=True)
class Sizes:
    overhead_jobs: int = 300
    # The simulator's seconds per KSampler step; a fixed-length job is ``busy_steps`` of them.
    step_delay: float = 0.05
    busy_jobs: int = 40
    busy_steps: int = 10
    submit_calls: int = 200
    submit_clients: int = 8
    submit_requests_per_client: int = 25
    progress_jobs: int = 15
    progress_steps: int = 40
    cancel_rounds: int = 20
    cold_start_runs: int = 3
    steady_jobs: int = 1000
    steady_sample_every: int = 100
    steady_in_flight: int = 4
    steady_subscribers: int = 1
    # The model the fetch section uploads to moto and has the runner fetch.
    model_mib: int = 256
    # Reference jobs of 10 s per client kind (bench.cost).
    cost_jobs: int = 3

    @property
    def gc_scale(self) -> float:
        return self.busy_steps * self.step_delay / RECORDED_JOB_SECONDS


FULL = Sizes()
# The smoke test's run: every section once, each as small as still yields each of its figures (a
# percentile from a few samples, two memory samples, a GC pause among the busy jobs' gaps).
QUICK = Sizes(
    model_mib=4,
    overhead_jobs=6,
    busy_jobs=6,
    busy_steps=4,
    submit_calls=10,
    submit_clients=2,
    submit_requests_per_client=3,
    progress_jobs=2,
    progress_steps=20,
    cancel_rounds=2,
    cold_start_runs=1,
    steady_jobs=20,
    steady_sample_every=10,
    cost_jobs=1,
)
