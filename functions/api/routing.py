"""Where a new job goes (its pool and lane) and whether its tenant's tier lets it in.

The pool comes from :func:`shared.pools.route` (explicit ``pool``, template, models); the lane from the
tier (``priority`` tiers use the pool's priority lane); the tier's ``maxJobsInFlight`` is checked
against the tenant's jobs queued and running (:mod:`shared.aws.in_flight`) and answered with a 429 and
``Retry-After`` when reached.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.aws.catalog import CachedCatalog
from shared.aws.in_flight import InFlightJobs
from shared.aws.tenants import TenantStore
from shared.errors import FieldError, InvalidRequest, TooManyJobsInFlight
from shared.model_refs import model_refs
from shared.pools import DEFAULT_POOL, PRIORITY_LANE, ModelRef, NoSuchPool, PoolDirectory, TierPolicy, route

ModelsOf = Callable[[dict[str, Any]], frozenset[ModelRef]]

# The model loaders' inputs and the ComfyUI folder each reads from. What the model catalog knows,
# once it is built, replaces this: routing only needs the (folder, name) pairs a workflow names.
_MODEL_INPUTS = {
    "ckpt_name": "checkpoints",
    "lora_name": "loras",
    "vae_name": "vae",
    "control_net_name": "controlnet",
    "unet_name": "diffusion_models",
    "clip_name": "text_encoders",
    "upscale_model_name": "upscale_models",
}


def models_by_input_name(workflow: dict[str, Any]) -> frozenset[ModelRef]:
    """The (folder, file) of every model a workflow's loaders name with a literal string."""
    found = set()
    for node in workflow.values():
        inputs = node.get("inputs") if isinstance(node, dict) else None
        for name, folder in _MODEL_INPUTS.items():
            chosen = inputs.get(name) if isinstance(inputs, dict) else None
            if isinstance(chosen, str) and chosen:
                found.add((folder, chosen))
    return frozenset(found)


def models_named_by(catalog: CachedCatalog) -> ModelsOf:
    """The models a workflow names through the model inputs the runners published (ComfyUI's own);
    by the loaders' usual input names until a runner has published them."""

    def named(workflow: dict[str, Any]) -> frozenset[ModelRef]:
        published = catalog.get()
        if published is None or not published.model_inputs:
            return models_by_input_name(workflow)
        return frozenset((ref.folder, ref.name) for ref in model_refs(workflow, published))

    return named


@dataclass(frozen=True)
class Placement:
    """What the job item records: None for the default pool and the standard lane, as before pools."""

    pool: str | None
    lane: str | None
    # The tenant's tier limits its jobs in flight: the job carries ``in_flight`` to be counted.
    counts_in_flight: bool = False


class TierOf:
    """A tenant's tier, cached like its keys (a tier change applies within ``ttl_s``)."""

    def __init__(self, store: TenantStore, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[str | None, float]] = {}

    def __call__(self, tenant_id: str) -> str | None:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(tenant_id)
        if cached is not None and now - cached[1] < self._ttl_s:
            return cached[0]
        tenant = self._store.tenant(tenant_id)
        tier = tenant.tier if tenant is not None else None
        with self._lock:
            self._cache[tenant_id] = (tier, now)
        return tier


@dataclass
class JobRouter:
    pools: PoolDirectory
    policies: Mapping[str, TierPolicy] = field(default_factory=dict)
    tier_of: Callable[[str], str | None] | None = None
    in_flight: InFlightJobs | None = None
    retry_after_seconds: int = 10
    models_of: ModelsOf = models_by_input_name

    def place(
        self, owner: str, *, pool: str | None, template: str | None, workflow: dict[str, Any]
    ) -> Placement:
        """Raises InvalidRequest (422) for a pool that cannot take the job, TooManyJobsInFlight (429)."""
        try:
            chosen = route(self.pools, pool=pool, template=template, models=self.models_of(workflow))
        except NoSuchPool as refused:
            pointer = "/pool" if pool is not None else ""
            raise InvalidRequest(
                f"pool {refused.pool!r} cannot run this job: {refused.reason}",
                [FieldError(pointer, refused.reason)],
            ) from None
        policy = self._policy(owner)
        self._admit(owner, policy)
        return Placement(
            pool=None if chosen.name == DEFAULT_POOL else chosen.name,
            lane=PRIORITY_LANE if policy.priority and chosen.priority_queue_url else None,
            counts_in_flight=policy.max_jobs_in_flight is not None and self.in_flight is not None,
        )

    def _policy(self, owner: str) -> TierPolicy:
        if not self.policies or self.tier_of is None:
            return TierPolicy()
        tier = self.tier_of(owner)
        return self.policies.get(tier or "", TierPolicy())

    def _admit(self, owner: str, policy: TierPolicy) -> None:
        limit = policy.max_jobs_in_flight
        if limit is None or self.in_flight is None:
            return
        if self.in_flight.count(owner, up_to=limit) >= limit:
            raise TooManyJobsInFlight(
                f"Your tier allows {limit} jobs queued or running at once, and {limit} are; submit again "
                "when one has ended (or cancel one).",
                self.retry_after_seconds,
            )
