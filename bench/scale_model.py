"""A day of traffic across the runner pools, simulated: the scale no test machine can run.

``python -m bench.scale_model [--context cdk.json-style JSON] [--jobs-per-day N] ...`` reads the pools
and scaling settings from ``infra.config.ServiceConfig`` (``cdk.json``'s context, with ``--context`` on
top, exactly as ``cdk deploy -c`` would), then runs a discrete-event model (SimPy) of each pool twice,
on-demand and on Spot, and reports p50/p99 queue wait, GPU utilisation and cost per job.

What the model follows, from the deployed stack (infra/runner.py):
- target tracking on (waiting + in hand) / desired tasks at ``targetJobsPerRunner``, from the metric one
  period late; the scale-out alarm fires on 3 of 3 one-minute periods over the target and the scale-in
  alarm on 15 of 15 under it (Application Auto Scaling's own alarms), each respecting its cooldown
  (``scaleOutCooldownSeconds``, ``scaleInCooldownSeconds``); from zero tasks the wake-up alarm asks for
  one task as soon as a job waits;
- ``min``/``max`` runners of the pool, one task per GPU, ``gpusPerInstance`` tasks an instance; an
  instance is launched when a task has no free GPU and ends when its last task has (task protection:
  a busy runner is never stopped by scale-in);
- a new instance boots, pulls the ComfyUI image at the root volume's throughput (unless it is pre-pulled
  at boot or comes from the warm pool) and starts ComfyUI; warm-pool instances only start;
- Spot: each instance is interrupted at ``--spot-interruptions-per-hour``; its jobs are handed back at
  once and run again elsewhere (their wait counts until they start again).

What it does not know, and takes as parameters: the traffic (a day with a sinusoidal peak at noon), the
jobs' GPU time (log-normal), boot, pull and ComfyUI start times, and the prices (``PRICES``: on-demand
list prices in us-east-1 and a typical Spot price, per hour, at the time of writing; give yours with
``--price type=on_demand,spot``).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import simpy

from infra.config import CONTEXT_KEYS, ServiceConfig
from shared.pools import PoolSpec

DAY_SECONDS = 24 * 3600
METRIC_PERIOD_SECONDS = 60
SCALE_OUT_DATAPOINTS = 3
SCALE_IN_DATAPOINTS = 15
# USD per instance-hour: (on-demand, a typical Spot price); Spot prices move, give yours with --price.
# What a SimPy process function returns.
Process = Generator[simpy.Event, Any, None]
PRICES: dict[str, tuple[float, float]] = {
    "g5.xlarge": (1.006, 0.45),
    "g5.2xlarge": (1.212, 0.52),
    "g5.12xlarge": (5.672, 2.30),
    "g6.xlarge": (0.805, 0.36),
    "g6e.xlarge": (1.861, 0.80),
    "g6e.12xlarge": (10.493, 4.40),
}


@dataclass(frozen=True)
class Workload:
    jobs_per_day: float = 20_000
    # The noon peak over the mean (0: flat traffic).
    peak_ratio: float = 0.8
    job_seconds_mean: float = 8.0
    job_seconds_sigma: float = 0.5
    launch_seconds: float = 75.0
    image_gib: float = 12.0
    comfyui_start_seconds: float = 45.0
    warm_start_seconds: float = 30.0
    spot_interruptions_per_hour: float = 0.05
    seed: int = 7


@dataclass(frozen=True)
class Scaling:
    """The pool's scaling, as the CDK app deploys it."""

    min_runners: int
    max_runners: int
    gpus_per_instance: int
    target_jobs_per_runner: float
    scale_out_cooldown_seconds: int
    scale_in_cooldown_seconds: int
    warm_pool_size: int
    pull_seconds: float

    @classmethod
    def of(cls, config: ServiceConfig, pool: PoolSpec, workload: Workload) -> Scaling:
        pre_pulled = config.pre_pull_image
        pull = 0.0 if pre_pulled else workload.image_gib * 1024 / config.root_volume_throughput_mibps
        return cls(
            min_runners=pool.min_runners,
            max_runners=pool.max_runners,
            gpus_per_instance=pool.gpus_per_instance,
            target_jobs_per_runner=config.target_jobs_per_runner,
            scale_out_cooldown_seconds=config.scale_out_cooldown_seconds,
            scale_in_cooldown_seconds=config.scale_in_cooldown_seconds,
            warm_pool_size=config.warm_pool_size if pool.name == "default" else 0,
            pull_seconds=pull,
        )


@dataclass
class Job:
    arrived: float
    seconds: float
    started: float | None = None


@dataclass
class Instance:
    ready: bool = False
    busy: int = 0
    tasks: int = 0
    launched: float = 0.0
    ended: float | None = None
    workers: list[simpy.Process] = field(default_factory=list)


class PoolModel:
    def __init__(self, scaling: Scaling, workload: Workload, spot: bool) -> None:
        self.s, self.w, self.spot = scaling, workload, spot
        self.env = simpy.Environment()
        self.queue: simpy.Store = simpy.Store(self.env)
        self.rng = random.Random(workload.seed)
        self.desired = scaling.min_runners
        self.instances: list[Instance] = []
        self.warm = scaling.warm_pool_size
        self.in_hand = 0
        self.waits: list[float] = []
        self.busy_gpu_seconds = 0.0
        self.interruptions = 0
        self.arrived = 0
        self.backlog_history: list[int] = []

    # -- traffic ----------------------------------------------------------------------------------

    def rate(self, t: float) -> float:
        mean = self.w.jobs_per_day / DAY_SECONDS
        return mean * (1 + self.w.peak_ratio * math.sin(2 * math.pi * (t / DAY_SECONDS - 0.25)))

    def arrivals(self) -> Process:
        peak = self.w.jobs_per_day / DAY_SECONDS * (1 + self.w.peak_ratio)
        while True:
            # Thinning: a Poisson process at the peak rate, each arrival kept with rate(t) / peak.
            yield self.env.timeout(self.rng.expovariate(peak))
            if self.env.now >= DAY_SECONDS:
                return
            if self.rng.random() < self.rate(self.env.now) / peak:
                mu = math.log(self.w.job_seconds_mean) - self.w.job_seconds_sigma**2 / 2
                seconds = self.rng.lognormvariate(mu, self.w.job_seconds_sigma)
                self.arrived += 1
                self.queue.put(Job(self.env.now, seconds))

    # -- capacity ---------------------------------------------------------------------------------

    def tasks(self) -> int:
        return sum(i.tasks for i in self.instances if i.ended is None)

    def place_tasks(self) -> None:
        """One task per free GPU of a running instance; an instance launched when none is free."""
        while self.tasks() < self.desired:
            free = next(
                (i for i in self.instances if i.ended is None and i.tasks < self.s.gpus_per_instance), None
            )
            if free is None:
                free = Instance(launched=self.env.now)
                self.instances.append(free)
                self.env.process(self.boot(free))
            free.tasks += 1
            if free.ready:
                free.workers.append(self.env.process(self.worker(free)))

    def boot(self, instance: Instance) -> Process:
        if self.warm > 0:
            self.warm -= 1
            yield self.env.timeout(self.w.warm_start_seconds + self.w.comfyui_start_seconds)
        else:
            yield self.env.timeout(self.w.launch_seconds + self.s.pull_seconds + self.w.comfyui_start_seconds)
        instance.ready = True
        instance.workers = [self.env.process(self.worker(instance)) for _ in range(instance.tasks)]
        if self.spot:
            self.env.process(self.interruption(instance))

    def interruption(self, instance: Instance) -> Process:
        rate = self.w.spot_interruptions_per_hour / 3600
        if rate <= 0:
            return
        yield self.env.timeout(self.rng.expovariate(rate))
        if instance.ended is not None:
            return
        self.interruptions += 1
        for worker in instance.workers:
            if worker.is_alive:
                worker.interrupt("spot")
        self.end(instance)
        self.place_tasks()

    def end(self, instance: Instance) -> None:
        instance.ended, instance.tasks = self.env.now, 0
        self.warm = min(self.warm + 1, self.s.warm_pool_size)

    def worker(self, instance: Instance) -> Process:
        while instance.ended is None:
            if self.tasks() > self.desired:
                # Scale-in stops idle tasks only; the last task out ends the instance.
                instance.tasks -= 1
                if instance.tasks == 0:
                    self.end(instance)
                return
            job: Job | None = None
            taking = self.queue.get()
            try:
                job = yield taking
                assert job is not None
                if job.started is None:
                    self.waits.append(self.env.now - job.arrived)
                job.started = self.env.now
                self.in_hand += 1
                instance.busy += 1
                begun = self.env.now
                try:
                    yield self.env.timeout(job.seconds)
                finally:
                    self.busy_gpu_seconds += self.env.now - begun
                    instance.busy -= 1
                    self.in_hand -= 1
            except simpy.Interrupt:
                if job is None and taking.triggered:
                    job = taking.value  # taken from the queue in the same instant: still in hand
                elif job is None:
                    taking.cancel()  # an idle runner's pending take must not swallow a later job
                if job is not None and (job.started is None or self.env.now < job.started + job.seconds):
                    # Handed back at the notice: it runs again elsewhere, from the start.
                    self.queue.items.insert(0, job)
                return

    # -- scaling ----------------------------------------------------------------------------------

    def scaler(self) -> Process:
        over = under = 0
        last_out = last_in = -math.inf
        while True:
            yield self.env.timeout(METRIC_PERIOD_SECONDS)
            backlog = len(self.queue.items) + self.in_hand
            self.backlog_history.append(backlog)
            # CloudWatch reports the SQS metrics one period late.
            seen = self.backlog_history[-2] if len(self.backlog_history) > 1 else 0
            target = self.s.target_jobs_per_runner
            wanted = min(self.s.max_runners, max(self.s.min_runners, math.ceil(seen / target)))
            if self.desired == 0:
                if len(self.queue.items) > 0:
                    self.desired = 1
                    self.place_tasks()
                continue
            per_task = seen / self.desired
            over = over + 1 if per_task > target else 0
            under = under + 1 if per_task < target else 0
            now = self.env.now
            if (
                over >= SCALE_OUT_DATAPOINTS
                and wanted > self.desired
                and now - last_out >= self.s.scale_out_cooldown_seconds
            ):
                self.desired, last_out = wanted, now
                self.place_tasks()
            elif (
                under >= SCALE_IN_DATAPOINTS
                and wanted < self.desired
                and now - last_in >= self.s.scale_in_cooldown_seconds
            ):
                self.desired, last_in = wanted, now

    # -- run --------------------------------------------------------------------------------------

    def run(self) -> dict[str, float]:
        self.place_tasks()
        self.env.process(self.arrivals())
        self.env.process(self.scaler())
        self.env.run(until=DAY_SECONDS)
        instance_seconds = sum((i.ended or DAY_SECONDS) - i.launched for i in self.instances)
        gpu_seconds = instance_seconds * self.s.gpus_per_instance
        waits = sorted(self.waits)
        return {
            "jobs_arrived": self.arrived,
            "jobs_started": len(waits),
            "jobs_never_started": sum(1 for job in self.queue.items if job.started is None),
            "queue_wait_p50_s": round(_percentile(waits, 50), 1),
            "queue_wait_p99_s": round(_percentile(waits, 99), 1),
            "gpu_utilisation": round(self.busy_gpu_seconds / gpu_seconds, 3) if gpu_seconds else 0.0,
            "instance_hours": round(instance_seconds / 3600, 1),
            "instances_launched": len(self.instances),
            "spot_interruptions": self.interruptions,
        }


def _percentile(values: list[float], percent: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(percent) - 1]


def context_of(extra: dict[str, Any]) -> ServiceConfig:
    """The config ``cdk deploy`` would build: cdk.json's context, then ``extra`` on top."""
    context = json.loads((Path(__file__).resolve().parent.parent / "cdk.json").read_text())["context"]
    ours = {key: value for key, value in {**context, **extra}.items() if key in CONTEXT_KEYS}
    return ServiceConfig.from_mapping(ours)


def model(
    config: ServiceConfig, workload: Workload, prices: dict[str, tuple[float, float]]
) -> list[dict[str, Any]]:
    rows = []
    for pool in config.all_pools:
        instance_type = pool.instance_types[0]
        on_demand, spot_price = prices.get(instance_type, (math.nan, math.nan))
        scaling = Scaling.of(config, pool, workload)
        for spot, price in ((False, on_demand), (True, spot_price)):
            result = PoolModel(scaling, workload, spot).run()
            cost = result["instance_hours"] * price
            jobs = result["jobs_started"]
            rows.append(
                {
                    "pool": pool.name,
                    "instance_type": instance_type,
                    "capacity": "spot" if spot else "on-demand",
                    "usd_per_hour": price,
                    **result,
                    "cost_usd": round(cost, 2),
                    "cost_per_job_usd": round(cost / jobs, 5) if jobs else None,
                }
            )
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    head = "| pool | instance | capacity | jobs | wait p50 / p99 s | GPU busy | instance-h | cost/job USD |"
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['pool']} | {r['instance_type']} | {r['capacity']} | {r['jobs_started']} | "
            f"{r['queue_wait_p50_s']} / {r['queue_wait_p99_s']} | {r['gpu_utilisation']:.1%} | "
            f"{r['instance_hours']} | {r['cost_per_job_usd']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale_model", description=__doc__.split("\n")[0])
    parser.add_argument("--context", default="{}", help="CDK context on top of cdk.json, as JSON")
    parser.add_argument("--jobs-per-day", type=float, default=Workload.jobs_per_day)
    parser.add_argument("--job-seconds", type=float, default=Workload.job_seconds_mean)
    parser.add_argument(
        "--spot-interruptions-per-hour", type=float, default=Workload.spot_interruptions_per_hour
    )
    parser.add_argument("--price", action="append", default=[], help="type=on_demand,spot (USD per hour)")
    parser.add_argument("--out", default="bench/results/scale-model.json")
    args = parser.parse_args(argv)
    prices = dict(PRICES)
    for given in args.price:
        name, _, values = given.partition("=")
        on_demand, spot = (float(v) for v in values.split(","))
        prices[name] = (on_demand, spot)
    config = context_of(json.loads(args.context))
    workload = Workload(
        jobs_per_day=args.jobs_per_day,
        job_seconds_mean=args.job_seconds,
        spot_interruptions_per_hour=args.spot_interruptions_per_hour,
    )
    rows = model(config, workload, prices)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"workload": workload.__dict__, "pools": rows}, indent=2))
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
