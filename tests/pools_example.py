"""The pools and tier limits the e2e pools stack runs with. Its template is the one every e2e stack enforces
(``IAM_TEMPLATE_POOLS``) and the one the pools template test reads: one synthesis for all of them."""

from __future__ import annotations

import json

from local.pools import synth_context
from shared.pools import parse_pool_specs, parse_tier_policies

SPOT_MODEL = "sd_xl_base_1.0.safetensors"
# A Spot pool of two single-GPU instances that holds the SDXL checkpoint; the default pool serves the rest.
POOLS = json.dumps(
    [
        {
            "name": "spot",
            "spot": True,
            "minInstances": 2,
            "maxInstances": 4,
            "models": [f"checkpoints/{SPOT_MODEL}"],
        }
    ]
)
IN_FLIGHT_LIMIT = 3
TIER_POLICIES = json.dumps({"free": {"maxJobsInFlight": IN_FLIGHT_LIMIT}})


def synth_context_of_example() -> dict[str, object]:
    return synth_context(
        parse_pool_specs(json.loads(POOLS)), ["free", "pro"], parse_tier_policies(TIER_POLICIES)
    )
