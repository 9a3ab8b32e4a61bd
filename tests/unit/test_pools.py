"""Pool declarations, tier policies and where a job goes."""

from __future__ import annotations

import pytest

from functions.api.routing import models_by_input_name
from shared.pools import (
    NoSuchPool,
    PoolConfigError,
    PoolDirectory,
    PoolRoute,
    parse_pool_specs,
    parse_tier_policies,
    pool_routes_json,
    route,
)

SDXL = ("checkpoints", "sdxl.safetensors")


def _directory() -> PoolDirectory:
    routes = [
        PoolRoute("default", "q-default"),
        PoolRoute("video", "q-video", "q-video-priority", templates=("wan-video",), max_runners=8),
        PoolRoute("big", "q-big", models=frozenset({SDXL, ("loras", "style.safetensors")}), max_runners=2),
        PoolRoute("parked", "q-parked", max_runners=0),
    ]
    return PoolDirectory.from_settings(pool_routes_json(routes), "ignored")


def test_pools_parse_from_context_with_their_defaults() -> None:
    [pool] = parse_pool_specs(
        '[{"name": "a100x4", "instanceTypes": ["p4d.24xlarge"], "gpusPerInstance": 4, "maxInstances": 2, '
        '"minInstances": 1, "spot": true, "models": ["checkpoints/flux.safetensors"]}]'
    )
    assert pool.gpus_per_instance == 4 and pool.spot
    # One runner (a ComfyUI and runner pair) per GPU.
    assert (pool.min_runners, pool.max_runners) == (4, 8)
    assert pool.model_refs() == frozenset({("checkpoints", "flux.safetensors")})


@pytest.mark.parametrize(
    ("spec", "complaint"),
    [
        ('[{"name": "Big Pool"}]', "name must match"),
        ('[{"name": "x", "gpusPerInstance": 9}]', "gpusPerInstance must be in [1, 8]"),
        ('[{"name": "x", "minInstances": 5, "maxInstances": 2}]', "minInstances must be between"),
        ('[{"name": "x"}, {"name": "x"}]', "names must be unique"),
        ('[{"name": "default"}]', "the service's own pool"),
        ('[{"name": "x", "models": ["flux.safetensors"]}]', "must be 'folder/name'"),
        ('[{"name": "x", "gpus": 2}]', "unknown keys ['gpus']"),
        ('{"name": "x"}', "expected a list"),
    ],
)
def test_a_bad_pool_declaration_says_what_is_wrong(spec: str, complaint: str) -> None:
    with pytest.raises(PoolConfigError, match=complaint.replace("[", r"\[").replace("]", r"\]")):
        parse_pool_specs(spec)


def test_an_explicit_pool_wins_over_template_and_models() -> None:
    assert route(_directory(), pool="video", template=None, models=frozenset({SDXL})).name == "video"


def test_a_template_goes_to_the_pool_that_lists_it() -> None:
    assert route(_directory(), template="wan-video").name == "video"


def test_models_go_to_the_first_pool_that_holds_every_one_of_them() -> None:
    assert route(_directory(), models=frozenset({SDXL})).name == "big"
    # A model the pool does not hold: the default pool, which serves the rest.
    assert route(_directory(), models=frozenset({SDXL, ("vae", "other.safetensors")})).name == "default"
    assert route(_directory()).name == "default"


def test_an_unknown_pool_or_one_with_no_runners_is_refused() -> None:
    with pytest.raises(NoSuchPool, match="no such pool"):
        route(_directory(), pool="gpu-xl")
    with pytest.raises(NoSuchPool, match="has no runners"):
        route(_directory(), pool="parked")


def test_a_pool_without_a_priority_lane_takes_priority_jobs_in_its_queue() -> None:
    directory = _directory()
    assert directory.get("video").queue_for("priority") == "q-video-priority"
    assert directory.get("big").queue_for("priority") == "q-big"
    assert directory.get(None).queue_url == "q-default"


def test_with_no_pools_declared_there_is_the_default_pool_only() -> None:
    directory = PoolDirectory.from_settings("", "q-main", "")
    assert directory.names() == ["default"]
    assert route(directory, template="txt2img").queue_url == "q-main"


def test_tier_policies_parse_and_default_to_no_limit() -> None:
    policies = parse_tier_policies('{"free": {"maxJobsInFlight": 3}, "pro": {"priority": true}}')
    assert policies["free"].max_jobs_in_flight == 3 and not policies["free"].priority
    assert policies["pro"].max_jobs_in_flight is None and policies["pro"].priority
    assert parse_tier_policies("") == {}


def test_the_models_a_workflow_names_are_read_from_its_loaders() -> None:
    workflow = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sdxl.safetensors"}},
        "2": {"class_type": "LoraLoader", "inputs": {"lora_name": "style.safetensors", "model": ["1", 0]}},
        "3": {"class_type": "LoraLoader", "inputs": {"lora_name": ["9", 0]}},
    }
    assert models_by_input_name(workflow) == frozenset({SDXL, ("loras", "style.safetensors")})
