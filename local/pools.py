"""The declared pools on one machine: each runner its own simulated instance (a ComfyUI simulator and,
on Spot, its own instance metadata service), reading its pool's queues with its pool's role.

``POOLS`` takes the same JSON as the CDK app's ``pools`` context; each pool starts ``minInstances x
gpusPerInstance`` runners (at least one), as its scaling would keep at rest.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local import processes
from local.imds import InstanceMetadata
from shared.names import Env
from shared.pools import (
    DEFAULT_POOL,
    PRIORITY_LANE,
    STANDARD_LANE,
    PoolRoute,
    PoolSpec,
    TierPolicy,
    pool_routes_json,
)

# A Spot runner here reads the notice often, so a test's notice is heard within a second.
LOCAL_SPOT_POLL_SECONDS = 0.5


@dataclass
class PoolRunner:
    pool: str
    index: int
    process: subprocess.Popen[bytes]
    comfyui_url: str
    simulator: subprocess.Popen[bytes] | None = None
    imds: InstanceMetadata | None = None

    def stop(self) -> None:
        processes.stop(self.process)
        if self.simulator is not None:
            processes.stop(self.simulator)
        if self.imds is not None:
            self.imds.stop()


@dataclass
class PoolFleet:
    """Every declared pool's runners: ``runners[pool]``."""

    runners: dict[str, list[PoolRunner]] = field(default_factory=dict)

    def all(self) -> list[PoolRunner]:
        return [runner for pool in self.runners.values() for runner in pool]

    def stop(self) -> None:
        """Every runner is told at once (SIGTERM), then waited for: they stop side by side."""
        for runner in self.all():
            if runner.process.poll() is None:
                runner.process.terminate()
        for runner in self.all():
            runner.stop()


def runners_at_rest(pool: PoolSpec) -> int:
    return max(1, pool.min_runners)


def synth_context(
    pools: tuple[PoolSpec, ...], tiers: list[str], policies: dict[str, TierPolicy]
) -> dict[str, Any]:
    """What the template must be synthesized with for these pools and lanes (empty: the default)."""
    context: dict[str, Any] = {}
    if pools:
        context["pools"] = [_context_pool(pool) for pool in pools]
    if any(p.priority for p in policies.values()):
        context["tiers"] = {
            name: {
                "rateLimit": 10,
                "burstLimit": 20,
                "quota": 1_000_000,
                "priority": policies.get(name, TierPolicy()).priority,
            }
            for name in tiers
        }
    return context


def enforced_context(own: dict[str, Any], template_pools: tuple[PoolSpec, ...]) -> dict[str, Any]:
    """The context of the template whose policies the stack enforces: its own, or its own with the pools
    of ``IAM_TEMPLATE_POOLS``, which must hold every pool the stack declares.

    A wider template only adds the other pools' queues, roles and grants on them; on a stack without those
    queues they grant nothing. Stacks of different pools can so share one synthesis (the tests do).
    """
    if not template_pools:
        return own
    wider = [_context_pool(pool) for pool in template_pools]
    missing = [pool["name"] for pool in own.get("pools", []) if pool not in wider]
    if missing:
        raise ValueError(
            f"IAM_TEMPLATE_POOLS must hold the stack's own pools as POOLS declares them: {missing}"
        )
    return {**own, "pools": wider}


def _context_pool(pool: PoolSpec) -> dict[str, Any]:
    return {
        "name": pool.name,
        "instanceTypes": list(pool.instance_types),
        "gpusPerInstance": pool.gpus_per_instance,
        "minInstances": pool.min_instances,
        "maxInstances": pool.max_instances,
        "spot": pool.spot,
        "templates": list(pool.templates),
        "models": list(pool.models),
    }


def routes_env(pools: tuple[PoolSpec, ...], queues: dict[str, dict[str, str]]) -> str:
    """``POOL_ROUTES`` for the API, as the CDK stack writes it."""
    default = PoolSpec(DEFAULT_POOL)
    return pool_routes_json(
        PoolRoute(
            name=pool.name,
            queue_url=queues[pool.name][STANDARD_LANE],
            priority_queue_url=queues[pool.name].get(PRIORITY_LANE, ""),
            templates=pool.templates,
            models=pool.model_refs(),
            max_runners=pool.max_runners,
        )
        for pool in (default, *pools)
    )


def pool_runner_env(pool: PoolSpec, queues: dict[str, str]) -> dict[str, str]:
    env = {Env.JOBS_QUEUE_URL: queues[STANDARD_LANE], Env.POOL_NAME: pool.name}
    if PRIORITY_LANE in queues:
        env["PRIORITY_QUEUE_URL"] = queues[PRIORITY_LANE]
    if pool.spot:
        env["RELEASE_ON_SIGTERM"] = "true"
        env["SPOT_POLL_SECONDS"] = str(LOCAL_SPOT_POLL_SECONDS)
    return env


def start_simulator(
    state_dir: Path, name: str, step_delay: float, node_delay: float, model_paths: Path | None = None
) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = processes.free_port()
    data_dir = state_dir / f"comfyui-{name}"
    models = ("--extra-model-paths-config", str(model_paths)) if model_paths else ()
    process = processes.start_simulator(
        port,
        step_delay,
        data_dir,
        state_dir / f"comfyui-sim-{name}.log",
        extra_args=("--node-delay", str(node_delay), *models),
    )
    return process, f"http://127.0.0.1:{port}", data_dir


def parse_local_pools(text: str) -> tuple[PoolSpec, ...]:
    from shared.pools import parse_pool_specs

    return parse_pool_specs(json.loads(text)) if text.strip() else ()
