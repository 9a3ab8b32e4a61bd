"""5. Cold start: a fresh interpreter per Lambda handler, importing it and serving its first request.

Each run is a new ``python`` process (``bench.cold_child``) against the stack's moto: the wall time of
the whole process, the import of the handler's module, and its first request (which also makes the
SDK clients). One more run per handler under ``python -X importtime`` names the heaviest imports
(cumulative, so a package's figure includes what it imports in turn).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

from bench.cold_child import COLD_API_KEY_ID, MODULES
from bench.harness import API_KEY, Bench
from bench.stats import percentile
from local.processes import ROOT
from local.stack import api_key_id

IGNORED = {"functions", "encodings", "site", "bench"}
# The local stack's process name for each handler: the child calls AWS with that function's role.
ROLES = {"api": "api", "ws": "ws_routes", "authorizer": "ws_authorizer", "dlq": "dlq", "sweeper": "sweeper"}


def _child(bench: Bench, name: str, importtime: bool) -> tuple[float, dict[str, Any], str]:
    assert bench.stack.iam is not None
    env = {
        **os.environ,
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
    "import time; started = time.perf_counter(); "
    "import boto3, fastapi, mangum; from aws_lambda_powertools import Logger, Metrics, Tracer; "
    "print(time.perf_counter() - started)"
)


def import_floor(runs: int) -> float:
    """Median seconds to import the floor in a fresh interpreter."""
    times = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", FLOOR_IMPORTS],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        times.append(float(done.stdout.strip().splitlines()[-1]))
    return percentile(times, 50)


def run(bench: Bench, runs: int) -> dict[str, Any]:
    handlers: dict[str, Any] = {}
    imports: dict[str, int] = {}
    for name, module in MODULES.items():
        walls, import_times, first_requests = [], [], []
        for _ in range(runs):
            wall, timings, _ = _child(bench, name, importtime=False)
            walls.append(wall)
            import_times.append(timings["import_s"])
            first_requests.append(timings["first_request_s"])
        _, _, report = _child(bench, name, importtime=True)
        top = heaviest(report, module=module)
        for entry in top:
            imports[entry["module"]] = max(imports.get(entry["module"], 0), entry["cumulative_ms"])
        handlers[name] = {
            "module": module,
            "runs": runs,
            "process_wall_ms": round(percentile(walls, 50) * 1000, 1),
            "import_ms": round(percentile(import_times, 50) * 1000, 1),
            "first_request_ms": round(percentile(first_requests, 50) * 1000, 1),
            "heaviest_imports": top,
        }
    bench.purge_queue()  # the api handler's first request queued a job
    ranked = sorted(imports.items(), key=lambda item: -item[1])[:10]
    floor_ms = round(import_floor(max(runs, 3)) * 1000, 1)
    return {
        "import_floor_ms": floor_ms,
        "api_import_to_floor": round(handlers["api"]["import_ms"] / floor_ms, 2) if floor_ms else None,
        "handlers": handlers,
        "heaviest_imports": [{"module": m, "cumulative_ms": ms} for m, ms in ranked],
    }
