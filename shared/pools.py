"""Runner pools and tier policies: what the platform team declares, and where a job goes.

A pool is a fleet of identical GPU runners with its own queue (and dead-letter queue), capacity and
scaling. The CDK app reads the declarations from context (``pools``, ``tiers``); the runtime reads the
part it needs (each pool's queues, what it serves, whether it has any capacity) from one environment
variable each, written by the stack from the same declarations. With no pool declared there is one,
``default``: the service as it always was.

Routing (:func:`route`): an explicit ``pool`` wins; then the first pool that lists the job's template;
then the first pool whose models cover every model the workflow names; else the default pool. A pool
that does not exist, or that has no runners (``maxInstances`` 0), is refused: a job never waits for a
GPU that cannot come.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT_POOL = "default"
PRIORITY_LANE = "priority"
STANDARD_LANE = "standard"
POOL_NAME = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
MAX_GPUS_PER_INSTANCE = 8

# A model a workflow names: (ComfyUI model folder, file name), e.g. ("checkpoints", "sdxl.safetensors").
ModelRef = tuple[str, str]


class PoolConfigError(ValueError):
    """A pool or tier declaration that cannot be used; the message names the pool and the field."""


class NoSuchPool(Exception):
    """The job names a pool that does not exist or has no runners; ``reason`` says which."""

    def __init__(self, pool: str, reason: str) -> None:
        super().__init__(f"{pool!r}: {reason}")
        self.pool = pool
        self.reason = reason


@dataclass(frozen=True)
class PoolSpec:
    """One pool as declared in context; the defaults describe the single pool of an undeclared fleet."""

    name: str
    instance_types: tuple[str, ...] = ("g5.xlarge",)
    gpus_per_instance: int = 1
    min_instances: int = 0
    max_instances: int = 4
    spot: bool = False
    templates: tuple[str, ...] = ()
    # "folder/name" of each model this pool's instances hold.
    models: tuple[str, ...] = ()

    @property
    def min_runners(self) -> int:
        return self.min_instances * self.gpus_per_instance

    @property
    def max_runners(self) -> int:
        """One runner (ComfyUI and runner pair) per GPU."""
        return self.max_instances * self.gpus_per_instance

    def model_refs(self) -> frozenset[ModelRef]:
        return frozenset(_model_ref(self.name, text) for text in self.models)

    def problems(self) -> list[str]:
        where = f"pools[{self.name}]"
        checks = [
            (bool(POOL_NAME.match(self.name)), f"{where}: name must match {POOL_NAME.pattern}"),
            (bool(self.instance_types), f"{where}: instanceTypes must name at least one instance type"),
            (
                1 <= self.gpus_per_instance <= MAX_GPUS_PER_INSTANCE,
                f"{where}: gpusPerInstance must be in [1, {MAX_GPUS_PER_INSTANCE}]",
            ),
            (
                0 <= self.min_instances <= self.max_instances,
                f"{where}: minInstances must be between 0 and maxInstances",
            ),
        ]
        return [message for ok, message in checks if not ok]


def _model_ref(pool: str, text: str) -> ModelRef:
    folder, sep, name = text.partition("/")
    if not sep or not folder or not name:
        raise PoolConfigError(
            f"pools[{pool}]: model {text!r} must be 'folder/name', e.g. 'checkpoints/x.safetensors'"
        )
    return folder, name


def parse_pool_specs(value: Any) -> tuple[PoolSpec, ...]:
    """Context ``pools``: a list of objects (or its JSON text), camelCase keys as in cdk.json."""
    specs = json.loads(value) if isinstance(value, str) else value
    if not isinstance(specs, list):
        raise PoolConfigError('pools: expected a list of {"name", "instanceTypes", "gpusPerInstance", ...}')
    pools = []
    for index, spec in enumerate(specs):
        if not isinstance(spec, Mapping) or "name" not in spec:
            raise PoolConfigError(f"pools[{index}]: expected an object with a name")
        unknown = set(spec) - set(_POOL_KEYS)
        if unknown:
            raise PoolConfigError(f"pools[{spec['name']}]: unknown keys {sorted(unknown)}")
        pools.append(
            PoolSpec(
                name=str(spec["name"]),
                instance_types=tuple(str(t) for t in spec.get("instanceTypes", PoolSpec.instance_types)),
                gpus_per_instance=int(spec.get("gpusPerInstance", 1)),
                min_instances=int(spec.get("minInstances", 0)),
                max_instances=int(spec.get("maxInstances", 4)),
                spot=bool(spec.get("spot", False)),
                templates=tuple(str(t) for t in spec.get("templates", ())),
                models=tuple(str(m) for m in spec.get("models", ())),
            )
        )
    check_pool_specs(pools)
    return tuple(pools)


_POOL_KEYS = (
    "name",
    "instanceTypes",
    "gpusPerInstance",
    "minInstances",
    "maxInstances",
    "spot",
    "templates",
    "models",
)


def check_pool_specs(pools: Sequence[PoolSpec]) -> None:
    problems = [message for pool in pools for message in pool.problems()]
    names = [pool.name for pool in pools]
    if len(set(names)) != len(names):
        problems.append("pools: names must be unique")
    if DEFAULT_POOL in names:
        problems.append(
            f"pools: {DEFAULT_POOL!r} is the service's own pool (set by instanceTypes, maxRunners)"
        )
    for pool in pools:
        pool.model_refs()  # raises for a malformed model name
    if problems:
        raise PoolConfigError("; ".join(problems))


# -- tiers -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TierPolicy:
    """What a tier may have in the pools: jobs in flight (queued + running), and the priority lane."""

    max_jobs_in_flight: int | None = None
    priority: bool = False


def parse_tier_policies(text: str) -> dict[str, TierPolicy]:
    """``TIER_POLICIES``: {"tier": {"maxJobsInFlight": n, "priority": bool}}; empty: no limits."""
    if not text.strip():
        return {}
    plain = json.loads(text)
    return {
        str(name): TierPolicy(
            max_jobs_in_flight=(
                int(spec["maxJobsInFlight"]) if spec.get("maxJobsInFlight") is not None else None
            ),
            priority=bool(spec.get("priority", False)),
        )
        for name, spec in plain.items()
    }


def tier_policies_json(policies: Mapping[str, TierPolicy]) -> str:
    return json.dumps(
        {
            name: {"maxJobsInFlight": p.max_jobs_in_flight, "priority": p.priority}
            for name, p in sorted(policies.items())
        },
        separators=(",", ":"),
    )


# -- what the runtime knows of each pool ------------------------------------------------------------


@dataclass(frozen=True)
class PoolRoute:
    """A pool as the API sees it: where its jobs go and what it serves."""

    name: str
    queue_url: str
    priority_queue_url: str = ""
    templates: tuple[str, ...] = ()
    models: frozenset[ModelRef] = field(default_factory=frozenset)
    max_runners: int = 1

    def queue_for(self, lane: str | None) -> str:
        """The lane's queue; a pool without a priority lane takes priority jobs in its one queue."""
        if lane == PRIORITY_LANE and self.priority_queue_url:
            return self.priority_queue_url
        return self.queue_url


def pool_routes_json(routes: Iterable[PoolRoute]) -> str:
    """``POOL_ROUTES``, as the stack writes it for the API."""
    return json.dumps(
        [
            {
                "name": r.name,
                "queueUrl": r.queue_url,
                "priorityQueueUrl": r.priority_queue_url,
                "templates": list(r.templates),
                "models": [f"{folder}/{name}" for folder, name in sorted(r.models)],
                "maxRunners": r.max_runners,
            }
            for r in routes
        ],
        separators=(",", ":"),
    )


@dataclass(frozen=True)
class PoolDirectory:
    """Every pool a job may go to; the default pool (first) takes what no other pool claims."""

    pools: tuple[PoolRoute, ...]

    @classmethod
    def from_settings(
        cls, routes_json: str, default_queue_url: str, default_priority_url: str = ""
    ) -> PoolDirectory:
        default = PoolRoute(DEFAULT_POOL, default_queue_url, default_priority_url)
        if not routes_json.strip():
            return cls((default,))
        declared = []
        for spec in json.loads(routes_json):
            name = str(spec["name"])
            declared.append(
                PoolRoute(
                    name=name,
                    queue_url=str(spec["queueUrl"]),
                    priority_queue_url=str(spec.get("priorityQueueUrl") or ""),
                    templates=tuple(spec.get("templates", ())),
                    models=frozenset(_model_ref(name, m) for m in spec.get("models", ())),
                    max_runners=int(spec.get("maxRunners", 1)),
                )
            )
        explicit_default = next((p for p in declared if p.name == DEFAULT_POOL), None)
        others = tuple(p for p in declared if p.name != DEFAULT_POOL)
        return cls((explicit_default or default, *others))

    @property
    def default(self) -> PoolRoute:
        return self.pools[0]

    def get(self, name: str | None) -> PoolRoute:
        """The pool a stored job names (None: the default pool, as for jobs from before pools)."""
        if not name:
            return self.default
        for pool in self.pools:
            if pool.name == name:
                return pool
        raise NoSuchPool(name, "no such pool")

    def names(self) -> list[str]:
        return [pool.name for pool in self.pools]


def route(
    directory: PoolDirectory,
    *,
    pool: str | None = None,
    template: str | None = None,
    models: frozenset[ModelRef] = frozenset(),
) -> PoolRoute:
    """The pool a new job goes to (see the module's docstring); raises :class:`NoSuchPool`."""
    if pool is not None:
        chosen = next((p for p in directory.pools if p.name == pool), None)
        if chosen is None:
            raise NoSuchPool(pool, f"no such pool; the pools are {directory.names()}")
    else:
        chosen = _by_template(directory, template) or _by_models(directory, models) or directory.default
    if chosen.max_runners < 1:
        raise NoSuchPool(chosen.name, "the pool has no runners (maxInstances is 0)")
    return chosen


def _by_template(directory: PoolDirectory, template: str | None) -> PoolRoute | None:
    if template is None:
        return None
    return next((p for p in directory.pools if template in p.templates), None)


def _by_models(directory: PoolDirectory, models: frozenset[ModelRef]) -> PoolRoute | None:
    if not models:
        return None
    return next((p for p in directory.pools if p.models and models <= p.models), None)
