"""Which inputs name models (learnt from ComfyUI's /object_info), what a workflow names, and what the
API says about a name the library lacks."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest
import requests
from comfy_jobs import cli

from gpu_runner import job_metrics
from shared.file_inputs import FileInputCatalog, catalog_from_object_info
from shared.model_refs import ModelRef, closest_names, missing_model_errors, model_refs, name_problem
from shared.models import Job, JobStatus, JobTimings
from tests.unit.test_client_transport import FakeTransport, client_over, response

PROBE = "comfy-api-model-probe-0123-checkpoints.safetensors"
OBJECT_INFO: dict[str, Any] = {
    "CheckpointLoaderSimple": {
        "input": {"required": {"ckpt_name": [["baked.safetensors", PROBE], {"tooltip": "x"}]}}
    },
    "LoraLoader": {
        "input": {
            "required": {
                "model": ["MODEL"],
                "lora_name": ["COMBO", {"options": ["comfy-api-model-probe-0123-loras.safetensors"]}],
            }
        }
    },
    # A combo of plain choices is no model input, even beside model inputs.
    "KSampler": {"input": {"required": {"sampler_name": [["euler", "dpmpp_2m"]]}}},
}
PROBES = {PROBE: "checkpoints", "comfy-api-model-probe-0123-loras.safetensors": "loras"}
# Read with the file-input probe too, as the runner does: no model combo is taken for a file input.
CATALOG = catalog_from_object_info(OBJECT_INFO, "comfy-api-probe-4567", PROBES)


def test_model_inputs_and_bundled_models_come_from_object_info_and_survive_json() -> None:
    assert CATALOG.model_inputs == {
        "CheckpointLoaderSimple": {"ckpt_name": "checkpoints"},
        "LoraLoader": {"lora_name": "loras"},
    }
    assert CATALOG.bundled_models == {"checkpoints": ("baked.safetensors",), "loras": ()}
    assert CATALOG.file_inputs == {}
    assert FileInputCatalog.from_json(CATALOG.to_json()) == CATALOG
    # A catalog written before models existed still reads, with none.
    old = json.dumps({"v": 1, "file_inputs": {}, "output_classes": [], "prefix_inputs": {}}).encode()
    assert FileInputCatalog.from_json(old).model_inputs == {}


def test_a_workflow_names_literal_models_only() -> None:
    workflow = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "a.safetensors"}},
        "2": {"class_type": "LoraLoader", "inputs": {"lora_name": ["9", 0], "model": ["1", 0]}},
        "3": {"class_type": "LoraLoader", "inputs": {"lora_name": "sub/b.safetensors"}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "a.safetensors"}},
    }
    assert model_refs(workflow, CATALOG) == [
        ModelRef("checkpoints", "a.safetensors"),
        ModelRef("loras", "sub/b.safetensors"),
    ]


@pytest.mark.parametrize(
    "name", ["", "../x.safetensors", "/abs.safetensors", "a/../b", "a//b", "a\\b", "x\n", "x" * 513]
)
def test_names_that_would_leave_their_folder_are_refused(name: str) -> None:
    assert name_problem(name) is not None


def test_a_missing_model_is_named_with_node_input_and_the_closest_names() -> None:
    library = {"checkpoints": {"sdxl-base-1.0.safetensors", "flux-dev.safetensors"}}
    workflow = {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sdxl-base-1.1.safetensors"}},
        "5": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "baked.safetensors"}},
        "6": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "flux-dev.safetensors"}},
    }
    errors = missing_model_errors(
        workflow,
        CATALOG,
        lambda ref: ref.name in library.get(ref.folder, set()),
        lambda folder: library.get(folder, set()),
        {("4", "ckpt_name"): "/params/checkpoint"},
    )
    [error] = errors
    assert (error.node_id, error.input, error.pointer) == ("4", "ckpt_name", "/params/checkpoint")
    assert error.closest[0] == "sdxl-base-1.0.safetensors"
    assert error.as_dict()["closest"] == list(error.closest)
    assert closest_names("zzz", ["abc"]) == []


def test_the_client_pages_through_the_library_and_the_cli_prints_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    item = {"folder": "loras", "name": "ink.safetensors", "size": 3 * 1024 * 1024, "sha256": "ab" * 32}
    transport = FakeTransport(
        response(200, {"items": [item], "next_cursor": "c1"}),
        response(200, {"items": [{**item, "name": "pen.safetensors", "sha256": None}], "next_cursor": None}),
    )
    models = list(client_over(transport).models(folder="loras"))
    assert [m.name for m in models] == ["ink.safetensors", "pen.safetensors"]
    assert "cursor=c1" in str(transport.requests[1].url) and "folder=loras" in str(transport.requests[1].url)
    cli.Output(as_json=False).models(models)
    assert capsys.readouterr().out.splitlines() == [
        "loras/ink.safetensors  3.0 MiB  sha256 abababababab…",
        "loras/pen.safetensors  3.0 MiB",
    ]
    assert isinstance(transport.requests[0], requests.PreparedRequest)


def test_the_time_spent_on_models_is_a_metric(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED")
    job = Job(
        job_id="j",
        owner="o",
        status=JobStatus.SUCCEEDED,
        created_at=1,
        updated_at=9,
        started_at=3,
        finished_at=9,
        timings=JobTimings(models_ms=1234),
    )
    job_metrics.emit(job, None)
    document = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert document["ModelFetchMs"] in (1234.0, [1234.0])


class PublishedCatalog:
    """A catalog store that has (or has not yet) a runner's publication."""

    def __init__(self, catalog: FileInputCatalog | None) -> None:
        self.catalog = catalog

    def read(self) -> FileInputCatalog | None:
        return self.catalog


def test_routing_finds_a_workflows_models_by_the_published_model_inputs() -> None:
    from functions.api.routing import models_named_by
    from shared.aws.catalog import CachedCatalog, CatalogStore

    # A custom loader whose input name no list knows: only the published catalog can tell.
    workflow = {"1": {"class_type": "FancyLoader", "inputs": {"weights": "flux.safetensors"}}}
    custom = FileInputCatalog(model_inputs={"FancyLoader": {"weights": "diffusion_models"}})
    named = models_named_by(CachedCatalog(cast(CatalogStore, PublishedCatalog(custom)), 60))
    assert named(workflow) == frozenset({("diffusion_models", "flux.safetensors")})
    before_any_runner = models_named_by(CachedCatalog(cast(CatalogStore, PublishedCatalog(None)), 60))
    assert before_any_runner(
        {"1": {"class_type": "X", "inputs": {"ckpt_name": "a.safetensors"}}}
    ) == frozenset({("checkpoints", "a.safetensors")})
