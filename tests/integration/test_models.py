"""Models from the S3 library, the whole way: listed and checked by the API, fetched and cached by a real
runner beside the simulator, whose loaders read the cache as ComfyUI reads an extra model path."""

from __future__ import annotations

import hashlib
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gpu_runner.runner import Runner
from local.comfyui_sim import SimulatorServer
from shared.aws.catalog import CatalogStore
from shared.aws.models import ModelLibrary
from shared.file_inputs import FileInputCatalog
from shared.model_paths import extra_model_paths_yaml
from shared.model_refs import ModelRef
from shared.models import JobStatus
from tests.conftest import sampler_workflow
from tests.integration.conftest import ApiCall
from tests.integration.test_runner_fidelity import Harness

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]
CHECKPOINT = ModelRef("checkpoints", "s3-only-v1.safetensors")
LORA = ModelRef("loras", "ink-style.safetensors")


def upload(library: ModelLibrary, tmp_path: Path, ref: ModelRef, size: int) -> bytes:
    data = hashlib.sha256(ref.name.encode()).digest() * (size // 32)
    path = tmp_path / ref.name
    path.write_bytes(data)
    library.upload(ref, path)
    return data


def with_models(checkpoint: str, lora: str | None = None) -> dict[str, Any]:
    workflow = sampler_workflow(2)
    workflow["4"]["inputs"]["ckpt_name"] = checkpoint
    if lora is not None:
        workflow["10"] = {
            "class_type": "LoraLoader",
            "inputs": {
                "model": ["4", 0],
                "clip": ["4", 1],
                "lora_name": lora,
                "strength_model": 0.8,
                "strength_clip": 0.8,
            },
        }
        workflow["3"]["inputs"]["model"] = ["10", 0]
    return workflow


@pytest.fixture
def runner_with_cache(moto_aws: Any, tmp_path: Path) -> Iterator[tuple[Harness, Path, bytes]]:
    """A runner beside a simulator that reads its cache; the checkpoint is in the library before it
    starts, and its warm-up workflow names it."""
    clients, resources = moto_aws
    checkpoint = upload(
        ModelLibrary(clients.s3, resources.bucket, "models/"), tmp_path, CHECKPOINT, 300 * 1024
    )
    cache = tmp_path / "model-cache"
    cache.mkdir()
    paths = cache / "extra_model_paths.yaml"
    paths.write_text(extra_model_paths_yaml(str(cache)))
    comfy = tmp_path / "comfy"
    with SimulatorServer(data_dir=comfy, step_delay=0.01, extra_model_paths=paths) as sim:
        harness = Harness(clients, resources, sim)
        harness.settings = harness.settings.model_copy(
            update={
                "model_cache_dir": str(cache),
                "model_part_bytes": 64 * 1024,
                "warmup_workflow": json.dumps(with_models(CHECKPOINT.name)),
                # ComfyUI's folders too, so file inputs are probed beside model inputs, as in a task.
                **{f"comfyui_{kind}_dir": str(comfy / kind) for kind in ("input", "output", "temp")},
            }
        )
        harness.runner = Runner(harness.settings, clients)
        harness.start()
        try:
            yield harness, cache, checkpoint
        finally:
            harness.stop()


def test_the_runner_warms_up_fetches_a_jobs_models_once_and_fails_a_job_naming_a_missing_one(
    moto_aws: Any, runner_with_cache: tuple[Harness, Path, bytes], tmp_path: Path
) -> None:
    clients, resources = moto_aws
    harness, cache, checkpoint = runner_with_cache
    lora = upload(ModelLibrary(clients.s3, resources.bucket, "models/"), tmp_path, LORA, 40 * 1024)

    # The checkpoint came with the warm-up; the LoRA is fetched by the job itself.
    first = harness.run_until_terminal(harness.submit(with_models(CHECKPOINT.name, LORA.name)))
    assert first.status is JobStatus.SUCCEEDED, first.error
    assert first.timings is not None and first.timings.models_ms is not None
    on_disk = [cache / "checkpoints" / CHECKPOINT.name, cache / "loras" / LORA.name]
    assert [path.read_bytes() for path in on_disk] == [checkpoint, lora]
    inodes = [path.stat().st_ino for path in on_disk]

    second = harness.run_until_terminal(harness.submit(with_models(CHECKPOINT.name, LORA.name)))
    assert second.status is JobStatus.SUCCEEDED, second.error
    assert [path.stat().st_ino for path in on_disk] == inodes  # the same files: nothing fetched again
    # The warm-up ran to its end in ComfyUI before the first job, and left no file behind.
    history = json.loads(urllib.request.urlopen(f"{harness.sim.url}/history", timeout=5).read())
    warm_up, *jobs = list(history)
    assert jobs == [first.prompt_id, second.prompt_id]
    assert history[warm_up]["status"]["status_str"] == "success"
    assert [p for p in (cache.parent / "comfy" / "output").rglob("*") if p.is_file()] == []

    # Named after the API's check (deleted meanwhile, or submitted before any catalog): input_error.
    missing = harness.run_until_terminal(harness.submit(with_models("gone.safetensors")))
    assert missing.status is JobStatus.FAILED and missing.error is not None
    assert missing.error.code == "input_error" and missing.error.node_id == "4"
    assert "checkpoints/gone.safetensors" in missing.error.message

    # What the runner published: which inputs are models (from ComfyUI's own folders), and what the
    # image has without the cache (the simulator's two built-in checkpoints, VAELoader's pixel_space).
    catalog = CatalogStore(clients.s3, resources.bucket).read()
    assert catalog is not None
    assert catalog.model_inputs["CheckpointLoaderSimple"] == {"ckpt_name": "checkpoints"}
    assert catalog.model_inputs["LoraLoader"] == {"lora_name": "loras"}
    assert catalog.model_inputs["VAELoader"] == {"vae_name": "vae"}
    assert "v1-5-pruned-emaonly.safetensors" in catalog.bundled_models["checkpoints"]
    assert catalog.bundled_models["vae"] == ("pixel_space",)


def test_the_api_lists_the_library_and_refuses_a_job_naming_a_model_it_lacks(
    api: ApiCall, moto_aws: Any, tmp_path: Path
) -> None:
    clients, resources = moto_aws
    library = ModelLibrary(clients.s3, resources.bucket, "models/")
    for ref in (CHECKPOINT, LORA, ModelRef("checkpoints", "sdxl-turbo.safetensors")):
        upload(library, tmp_path, ref, 1024)

    first = api("GET", "/v1/models?limit=2")
    assert first.status == 200 and len(first.body["items"]) == 2 and first.body["next_cursor"]
    rest = api("GET", f"/v1/models?limit=2&cursor={first.body['next_cursor']}")
    names = [(m["folder"], m["name"]) for m in first.body["items"] + rest.body["items"]]
    assert names == [
        ("checkpoints", "s3-only-v1.safetensors"),
        ("checkpoints", "sdxl-turbo.safetensors"),
        ("loras", "ink-style.safetensors"),
    ]
    assert rest.body["next_cursor"] is None
    assert (
        first.body["items"][0]["sha256"]
        == hashlib.sha256(hashlib.sha256(CHECKPOINT.name.encode()).digest() * 32).hexdigest()
    )
    loras = api("GET", "/v1/models?folder=loras")
    assert [m["name"] for m in loras.body["items"]] == [LORA.name]
    refused = api("GET", f"/v1/models?folder=loras&cursor={first.body['next_cursor']}")
    assert refused.status == 422 and refused.body["errors"][0]["pointer"] == "query:cursor"

    CatalogStore(clients.s3, resources.bucket).publish(
        FileInputCatalog(
            model_inputs={
                "CheckpointLoaderSimple": {"ckpt_name": "checkpoints"},
                "LoraLoader": {"lora_name": "loras"},
            },
            bundled_models={"checkpoints": ("v1-5-pruned-emaonly.safetensors",)},
        )
    )
    answer = api(
        "POST", "/v1/jobs", {"workflow": with_models("s3-only-v2.safetensors", "ink-styles.safetensors")}
    )
    assert answer.status == 422, answer.body
    by_node = {error["node_id"]: error for error in answer.body["errors"]}
    assert by_node["4"]["input"] == "ckpt_name" and by_node["4"]["pointer"] == "/workflow/4/inputs/ckpt_name"
    assert by_node["4"]["closest"][0] == "s3-only-v1.safetensors"
    assert by_node["10"]["closest"] == ["ink-style.safetensors"]
    assert "not in checkpoints/" in by_node["4"]["detail"]
    assert api("GET", "/v1/jobs").body["items"] == []  # nothing was queued

    # A model in the library, one built into the image, and one uploaded a moment ago all pass.
    upload(library, tmp_path, ModelRef("checkpoints", "just-now.safetensors"), 64)
    for name in (CHECKPOINT.name, "v1-5-pruned-emaonly.safetensors", "just-now.safetensors"):
        assert api("POST", "/v1/jobs", {"workflow": with_models(name, LORA.name)}).status == 202
