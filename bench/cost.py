"""8. What a job costs the control plane: the reference job of ``docs/cost.md``, counted call by call.

The reference job: submitted with an ``Idempotency-Key`` by the Python client library, the shipped
txt2img template's graph (about 0.7 KB of workflow) sampling 20 steps that take 10 s on the GPU, one
output image that the client downloads by its presigned URL. Three clients: one that follows the job
on the WebSocket (``Client.submit`` then ``Client.wait``), the same showing progress (``wait`` with a
callback), and one that only reads it over REST with ``Prefer: wait`` until it ends. Every call is
counted where it lands (moto, the API Gateway emulator, the @connections API), priced by
``bench.prices``, and the per-job figures are written for ``python -m bench.cost_doc`` to render.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from comfy_jobs import Client

from bench.access_log import line_bytes, stage_formats
from bench.cost_model import Deployment, aws_units, dollars_per_million, gateway_units, per_job
from bench.counters import per_job as calls_per_job
from bench.deployed import deployed_function_env, deployed_runner_env
from bench.harness import RUNNER_APP_ID, Bench
from bench.workflows import sampler
from infra.config import ServiceConfig
from local import processes
from local.iam.template import synthesized_template

# websocket: Client.wait() with no callback (status changes only); websocket-progress: the same with a
# callback, so progress frames at wait()'s default rate; polling: Prefer: wait reads until the end.
SCENARIOS = ("websocket", "websocket-progress", "polling")
REFERENCE_STEPS = 20
REFERENCE_SECONDS = 10.0
# Metrics on, as deployed: the EMF documents' bytes are part of the job's cost.
RUNNER_ENV = {"POWERTOOLS_METRICS_DISABLED": "false", "AWS_SDK_UA_APP_ID": RUNNER_APP_ID}


def deployment(config: ServiceConfig | None = None, template: dict[str, Any] | None = None) -> Deployment:
    """The cost-relevant settings the template deploys with (infra.config defaults, the stages' access
    log formats)."""
    config = config or ServiceConfig()
    template = template if template is not None else synthesized_template()
    rate = getattr(config, "xray_sampling_rate", None)
    return Deployment(
        memory_mb={"api": config.api_memory_mib},
        default_memory_mb=config.function_memory_mib,
        rest_trace_rate=1.0 if rate is None else float(rate),
        lambdas_traced=rate is None,
        lambda_platform_logs=getattr(config, "lambda_system_log_level", "INFO") == "INFO",
        access_log_line_bytes={api: line_bytes(f) for api, f in stage_formats(template).items()},
    )


@contextmanager
def _api_as_deployed() -> Iterator[dict[str, str]]:
    """The in-process API function reads the deployed settings for the run, then its own again."""
    from functions.api.context import default_context

    env = deployed_function_env("functions.api.handler.handler")
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    default_context.cache_clear()
    try:
        yield env
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        default_context.cache_clear()


def _follow(client: Client, workflow: dict[str, Any], directory: Path, progress: bool = False) -> None:
    job = client.submit(workflow)
    # A caller that shows progress passes a callback, and wait() then asks for progress frames.
    shown: list[Any] = []
    finished = client.wait(job.job_id, timeout=120, on_event=shown.append if progress else None)
    if finished.status != "succeeded":
        raise RuntimeError(f"reference job {job.job_id} ended {finished.status}")
    client.download(finished, directory)


def _poll(client: Client, workflow: dict[str, Any], directory: Path) -> None:
    job = client.submit(workflow)
    while not job.is_terminal:
        job = client.get(job.job_id, wait=20)
    if job.status != "succeeded":
        raise RuntimeError(f"reference job {job.job_id} ended {job.status}")
    client.download(job, directory)


def _scenario(
    bench: Bench, name: str, jobs: int, first_seed: int, runner_log: Path, directory: Path
) -> dict[str, Any]:
    client = Client(bench.rest_url, api_key="bench-key")
    call_mark, post_mark, gateway_mark = bench.calls.mark(), bench.posts.mark(), bench.gateway.mark()
    log_mark = runner_log.stat().st_size
    for seed in range(first_seed, first_seed + jobs):
        # A seed of its own per job: ComfyUI would serve a repeated prompt from its cache.
        workflow = sampler(REFERENCE_STEPS, seed)
        if name == "polling":
            _poll(client, workflow, directory)
        else:
            _follow(client, workflow, directory, progress=name == "websocket-progress")
    # The runner's last writes, and the functions the jobs table's stream feeds, are counted here.
    _settle(bench)
    calls = [c for c in bench.calls.since(call_mark) if not _background(bench, c)]
    gateway = bench.gateway.since(gateway_mark)
    posts = bench.posts.sizes_since(post_mark)
    dep = deployment()
    totals = {
        **aws_units(calls),
        **gateway_units(
            gateway["invocations"],
            gateway["rest_requests"],
            gateway["messages_in"],
            posts,
            gateway["connection_seconds"],
            dep,
            gateway["log_bytes"],
        ),
        "runner_log_bytes": float(runner_log.stat().st_size - log_mark),
    }
    units = per_job(totals, jobs)
    by_function: dict[str, dict[str, float]] = {}
    for invocation in gateway["invocations"]:
        entry = by_function.setdefault(invocation.function, {"invocations": 0, "ms": 0.0})
        entry["invocations"] += 1
        entry["ms"] += invocation.duration_ms
    return {
        "jobs": jobs,
        "units_per_job": {k: round(v, 4) for k, v in units.items()},
        "usd_per_million_jobs": {k: round(v, 2) for k, v in dollars_per_million(units).items()},
        "calls_per_job": calls_per_job(calls, jobs, set()),
        "lambda_per_job": {
            name: {
                "invocations": round(e["invocations"] / jobs, 3),
                "mean_ms": round(e["ms"] / max(e["invocations"], 1), 1),
                "memory_mb": dep.memory_of(name),
            }
            for name, e in sorted(by_function.items())
        },
        "largest_item_bytes": max(
            (c.units.largest_item_bytes for c in calls if c.units is not None), default=0
        ),
    }


def _settle(bench: Bench, quiet_seconds: float = 2.0, most_seconds: float = 20.0) -> None:
    """Waits until no function has been invoked for ``quiet_seconds``: the stream's consumers run a
    moment after the writes that feed them, and belong to the jobs that made those writes."""
    time.sleep(1.0)
    deadline = time.monotonic() + most_seconds
    seen = bench.gateway.mark()["invocations"]
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = bench.gateway.mark()["invocations"]
        if now != seen:
            seen, quiet_since = now, time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_seconds:
            return


def _background(bench: Bench, call: Any) -> bool:
    return call.resource in bench.background() or call.operation == "ReceiveMessage (empty)"


def run(bench: Bench, jobs: int) -> dict[str, Any]:
    bench.stop_runners()
    with tempfile.TemporaryDirectory(prefix="cost-") as scratch, _api_as_deployed() as api_env:
        state = Path(scratch)
        port = processes.free_port()
        step_delay = REFERENCE_SECONDS / REFERENCE_STEPS
        simulator = processes.start_simulator(port, step_delay, state / "comfyui", state / "sim.log")
        try:
            runner_env = {**deployed_runner_env(), **RUNNER_ENV}
            runner = bench.stack.start_runner({**runner_env, "COMFYUI_URL": f"http://127.0.0.1:{port}"})
            bench.runners.append(runner)
            runner_log = bench.stack.state_dir / f"runner-{len(bench.stack.runners) - 1}.log"
            # A job each way warms the runner, ComfyUI's model cache and every function, uncounted.
            warm = Client(bench.rest_url, api_key="bench-key")
            _follow(warm, sampler(REFERENCE_STEPS, 1), state)
            _poll(warm, sampler(REFERENCE_STEPS, 2), state)
            _settle(bench)
            scenarios = {
                name: _scenario(bench, name, jobs, 10 + 100 * i, runner_log, state)
                for i, name in enumerate(SCENARIOS)
            }
        finally:
            bench.stop_runners()
            processes.stop(simulator)
    return {
        "reference": {
            "steps": REFERENCE_STEPS,
            "seconds": REFERENCE_SECONDS,
            "workflow_bytes": len(json.dumps(sampler(REFERENCE_STEPS, 1), separators=(",", ":"))),
        },
        "deployment": deployment().as_dict(),
        "runner_settings": runner_env,
        "api_settings": api_env,
        **scenarios,
    }
