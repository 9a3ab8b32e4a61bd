"""5. Cold start: a fresh interpreter per Lambda handler, importing it and serving its first request.

Each run is a new ``python`` process (``bench.cold_child``) against the stack's moto: the wall time of
the whole process, the import of the handler's module, and its first request (which also makes the
SDK clients). One more run per handler under ``python -X importtime`` names the heaviest imports
(cumulative, so a package's figure includes what it imports in turn).

The children start as Lambda starts them, in what matters to an import: ``LAMBDA_TASK_ROOT`` is set
(the X-Ray SDK then skips the sampling poller and its X-Ray client, which it makes everywhere else),
and the modules load from bytecode, as they do from the asset (``infra.bundling`` compiles it). The
bytecode is written to a cache of this run's own (``PYTHONPYCACHEPREFIX``) by a first run per handler,
which is reported apart: that is the cold start of an asset without bytecode, where a read-only
``/var/task`` makes every start compile every module again (an upper bound: here the standard library
and boto3 compile too, which Lambda's runtime ships compiled). The floor is measured the same way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.cold_child import COLD_API_KEY_ID, MODULES
from bench.harness import API_KEY, Bench
from bench.stats import percentile
from local.processes import ROOT
from local.stack import api_key_id

IGNORED = {"functions", "encodings", "site", "bench"}
# The local stack's process name for each handler: the child calls AWS with that function's role.
ROLES = {"api": "api", "ws": "ws_routes", "authorizer": "ws_authorizer", "dlq": "dlq"}


def lambda_like_env(bytecode_cache: str | None) -> dict[str, str]:
    """This process's environment as a Lambda runtime would differ from it for an import; without a
    bytecode cache, modules without bytecode of their own are compiled on every start (a quick run)."""
    if bytecode_cache is None:
        return {**os.environ, "LAMBDA_TASK_ROOT": str(ROOT)}
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "LAMBDA_TASK_ROOT": str(ROOT), "PYTHONPYCACHEPREFIX": bytecode_cache}


def _child(
    bench: Bench, name: str, importtime: bool, bytecode_cache: str | None
) -> tuple[float, dict[str, Any], str]:
    assert bench.stack.iam is not None
    env = {
        **lambda_like_env(bytecode_cache),
        **bench.stack.iam.env(ROLES[name]),
        "AWS_SDK_UA_APP_ID": "bench-cold",
        COLD_API_KEY_ID: api_key_id(API_KEY),
    }
    command = [sys.executable, *(["-X", "importtime"] if importtime else []), "-m", "bench.cold_child", name]
    started = time.perf_counter()
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"cold start of {name} failed: {done.stderr[-2000:]}")
    return wall, json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def heaviest(importtime_output: str, count: int = 10, module: str | None = None) -> list[dict[str, Any]]:
    """Top-level packages by cumulative import time, from ``-X importtime``'s report; with ``module``,
    only what importing it pulled in (the report lists a module once its import is done, so the lines
    after the handler's own are the child's later imports, such as the event builders)."""
    found: dict[str, int] = {}
    for line in importtime_output.splitlines():
        if not line.startswith("import time:") or "|" not in line or "cumulative" in line:
            continue
        _, cumulative, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        if module is not None and name == module:
            break
        if "." in name or name in IGNORED:
            continue
        found[name] = max(found.get(name, 0), int(cumulative))
    ranked = sorted(found.items(), key=lambda item: -item[1])[:count]
    return [{"module": name, "cumulative_ms": round(us / 1000, 1)} for name, us in ranked]


# What any FastAPI-on-Lambda handler with Powertools imports before a line of its own: the floor a cold
# start is measured against.
FLOOR_IMPORTS = (
    "import time; started, cpu = time.perf_counter(), time.process_time(); "
    "import boto3, fastapi, mangum; from aws_lambda_powertools import Logger, Metrics, Tracer; "
    "print(time.perf_counter() - started, time.process_time() - cpu)"
)


def import_floor(runs: int, bytecode_cache: str | None) -> tuple[float, float]:
    """Median seconds, wall and CPU, to import the floor in a fresh interpreter (after one run that
    writes the bytecode)."""
    times, cpu_times = [], []
    for _ in range(runs + (1 if bytecode_cache else 0)):
        done = subprocess.run(
            [sys.executable, "-c", FLOOR_IMPORTS],
            cwd=ROOT,
            env=lambda_like_env(bytecode_cache),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        wall, cpu = done.stdout.strip().splitlines()[-1].split()
        times.append(float(wall))
        cpu_times.append(float(cpu))
    # The first run wrote the bytecode the others read; without a cache every run compiles alike.
    measured = slice(1 if bytecode_cache else 0, None)
    return percentile(times[measured], 50), percentile(cpu_times[measured], 50)


def run(bench: Bench, runs: int) -> dict[str, Any]:
    if runs < 2:  # a quick run: no start of its own to write the bytecode
        return _run(bench, runs, None)
    with tempfile.TemporaryDirectory(prefix="bench-cold-pyc-") as bytecode_cache:
        return _run(bench, runs, bytecode_cache)


def _run(bench: Bench, runs: int, bytecode_cache: str | None) -> dict[str, Any]:
    handlers: dict[str, Any] = {}
    imports: dict[str, int] = {}
    for name, module in MODULES.items():
        # The first start compiles what it imports from source and writes the bytecode the others read;
        # each handler has a cache of its own, so that each first start compiles all it imports.
        cache = str(Path(bytecode_cache) / name) if bytecode_cache else None
        from_source = _child(bench, name, False, cache)[1] if cache else None
        walls, import_times, import_cpu_times, first_requests = [], [], [], []
        for _ in range(runs):
            wall, timings, _ = _child(bench, name, False, cache)
            walls.append(wall)
            import_times.append(timings["import_s"])
            import_cpu_times.append(timings["import_cpu_s"])
            first_requests.append(timings["first_request_s"])
        _, _, report = _child(bench, name, True, cache)
        top = heaviest(report, module=module)
        for entry in top:
            imports[entry["module"]] = max(imports.get(entry["module"], 0), entry["cumulative_ms"])
        handlers[name] = {
            "module": module,
            "runs": runs,
            "process_wall_ms": round(percentile(walls, 50) * 1000, 1),
            "import_ms": round(percentile(import_times, 50) * 1000, 1),
            "import_cpu_ms": round(percentile(import_cpu_times, 50) * 1000, 1),
            "import_without_bytecode_ms": (round(from_source["import_s"] * 1000, 1) if from_source else None),
            "first_request_ms": round(percentile(first_requests, 50) * 1000, 1),
            "heaviest_imports": top,
        }
    bench.purge_queue()  # the api handler's first request queued a job
    ranked = sorted(imports.items(), key=lambda item: -item[1])[:10]
    floor_cache = str(Path(bytecode_cache) / "floor") if bytecode_cache else None
    floor_s, floor_cpu_s = import_floor(max(runs, 3), floor_cache)
    floor_ms, floor_cpu_ms = round(floor_s * 1000, 1), round(floor_cpu_s * 1000, 1)
    api = handlers["api"]
    return {
        "import_floor_ms": floor_ms,
        "import_floor_cpu_ms": floor_cpu_ms,
        "api_import_to_floor": round(api["import_ms"] / floor_ms, 2) if floor_ms else None,
        # The same ratio in CPU time, which a busy machine disturbs far less than the wall clock.
        "api_import_cpu_to_floor": round(api["import_cpu_ms"] / floor_cpu_ms, 2) if floor_cpu_ms else None,
        "handlers": handlers,
        "heaviest_imports": [{"module": m, "cumulative_ms": ms} for m, ms in ranked],
    }
