"""Which template's IAM a local stack enforces: its own pools' or, with IAM_TEMPLATE_POOLS, a wider one."""

from __future__ import annotations

import json

import pytest

from local.pools import enforced_context, parse_local_pools, synth_context
from shared.pools import parse_tier_policies

SPOT = {"name": "spot", "spot": True, "minInstances": 2, "models": ["checkpoints/sdxl.safetensors"]}
VIDEO = {"name": "video", "templates": ["wan-video"]}


def _own(pools: list[dict[str, object]], tier_policies: str = "") -> dict[str, object]:
    specs = parse_local_pools(json.dumps(pools)) if pools else ()
    return synth_context(specs, ["free", "pro"], parse_tier_policies(tier_policies))


def test_without_template_pools_a_stack_enforces_its_own_template() -> None:
    assert enforced_context({}, ()) == {}
    own = _own([SPOT])
    assert enforced_context(own, ()) == own


def test_a_stack_without_pools_or_with_some_of_them_enforces_the_wider_template() -> None:
    wider = parse_local_pools(json.dumps([SPOT, VIDEO]))
    both = _own([SPOT, VIDEO])
    assert enforced_context({}, wider) == both
    assert enforced_context(_own([SPOT]), wider) == both
    # The lanes the tiers ask for stay the stack's own.
    priority = _own([], json.dumps({"pro": {"priority": True}}))
    assert enforced_context(priority, wider) == {**priority, "pools": both["pools"]}


def test_a_pool_the_wider_template_lacks_or_declares_otherwise_is_refused() -> None:
    wider = parse_local_pools(json.dumps([SPOT]))
    with pytest.raises(ValueError, match="video"):
        enforced_context(_own([VIDEO]), wider)
    with pytest.raises(ValueError, match="spot"):
        enforced_context(_own([{**SPOT, "maxInstances": 9}]), wider)
