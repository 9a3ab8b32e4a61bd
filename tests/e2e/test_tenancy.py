"""One tenant cannot read another's files through ComfyUI's disk, and a job leaves nothing on it.

The tests of this module share one stack and run in order. Tenant A's job saves under ComfyUI's default
prefix; tenant B then names that file in a LoadImage, as an annotated name or a path.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from PIL import Image

from shared.names import COMFYUI_CATALOG_KEY
from tests.e2e.conftest import Stack, start_stack, stop_stack, submit, wait_for
from tests.e2e.test_templates_and_uploads import upload_png

SECRET = "ComfyUI_00001_.png"
# Tenant B's ways to name a file tenant A's job left in ComfyUI's output folder.
STEALS = (f"{SECRET} [output]", f"../output/{SECRET}", "/etc/hostname", "example.png")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # The API reads the catalog on every submit, so a test can take it away.
    running = start_stack(tmp_path_factory.mktemp("tenancy"), RUNNERS="0", CATALOG_CACHE_SECONDS="0")
    BEFORE_ANY_JOB.update(files_in(comfy_folders(running)))
    yield running
    stop_stack(running)


def comfy_folders(stack: Stack) -> dict[str, Path]:
    names = {"input": "COMFYUI_INPUT_DIR", "output": "COMFYUI_OUTPUT_DIR", "temp": "COMFYUI_TEMP_DIR"}
    return {kind: Path(stack.runner_env[name]) for kind, name in names.items()}


# What ComfyUI's folders held before this module's first job.
BEFORE_ANY_JOB: set[str] = set()


def files_in(folders: dict[str, Path]) -> set[str]:
    # A real ComfyUI makes input/3d itself whenever /object_info is asked (Load3D lists it).
    own = {folders["input"] / "3d"}
    return {str(path) for folder in folders.values() for path in folder.rglob("*") if path not in own}


def assert_emptied(folders: dict[str, Path]) -> None:
    """Nothing of any job of this module is left; the runner removes a job's files just after its
    terminal write: allow it a moment."""
    deadline = time.monotonic() + 5
    while files_in(folders) - BEFORE_ANY_JOB and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sorted(files_in(folders) - BEFORE_ANY_JOB) == []


def steal(name: str) -> dict[str, Any]:
    return {
        "7": {"class_type": "LoadImage", "inputs": {"image": name}},
        "8": {"class_type": "PreviewImage", "inputs": {"images": ["7", 0]}},
    }


def saved_square(prefix: str) -> dict[str, Any]:
    """An 8x8 square of 0x336699, saved under ``prefix``."""
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0x336699},
        },
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": prefix}},
    }


def run_alices_job(stack: Stack) -> None:
    """A job of tenant A that saves under ComfyUI's default prefix: its first file is SECRET."""
    alice = stack.client(0)
    receipt = submit(alice, stack.rest_url, saved_square("ComfyUI"))
    assert receipt.status_code == 202, receipt.text
    assert wait_for(alice, stack.rest_url + receipt.headers["Location"], timeout=60)["status"] == "succeeded"


def test_the_api_refuses_a_file_input_that_is_not_an_upload_naming_node_and_input(stack: Stack) -> None:
    stack.start_runner()
    run_alices_job(stack)  # the runner published its ComfyUI's file inputs when it connected
    bob = stack.client(1)
    for name in STEALS:
        answer = submit(bob, stack.rest_url, steal(name))
        assert answer.status_code == 422, answer.text
        [error] = answer.json()["errors"]
        assert (error["node_id"], error["input"], error["pointer"]) == (
            "7",
            "image",
            "/workflow/7/inputs/image",
        )
    linked = steal("x")
    linked["6"] = {"class_type": "PrimitiveString", "inputs": {"value": f"{SECRET} [output]"}}
    linked["7"]["inputs"]["image"] = ["6", 0]
    assert submit(bob, stack.rest_url, linked).status_code == 422


def test_without_a_catalog_the_runner_refuses_a_file_input_that_is_not_an_upload(stack: Stack) -> None:
    # As on a fresh deploy, before any runner has published: the API cannot know which inputs are files.
    s3 = boto3.client(
        "s3",
        endpoint_url=stack.runner_env["AWS_ENDPOINT_URL"],
        region_name=stack.runner_env["AWS_DEFAULT_REGION"],
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    s3.delete_object(Bucket=stack.runner_env["BUCKET_NAME"], Key=COMFYUI_CATALOG_KEY)
    run_alices_job(stack)
    bob = stack.client(1)
    receipts = {name: submit(bob, stack.rest_url, steal(name)) for name in STEALS}
    assert all(r.status_code == 202 for r in receipts.values()), [r.text for r in receipts.values()]
    for name, receipt in receipts.items():
        job = wait_for(bob, stack.rest_url + receipt.headers["Location"], timeout=60)
        assert job["status"] == "failed", job
        assert job["error"]["code"] == "input_error" and job["error"]["node_id"] == "7", job["error"]
        assert "input 'image' of node 7 (LoadImage)" in job["error"]["message"], name


def test_a_finished_job_leaves_none_of_its_files_in_comfyui_folders(stack: Stack) -> None:
    folders = comfy_folders(stack)
    alice = stack.client(0)
    ref = upload_png(stack, Image.new("RGB", (16, 16), (10, 20, 30)))
    graph = {
        "1": {"class_type": "LoadImage", "inputs": {"image": ref}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "../../mine"}},
        "4": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}},
    }
    receipt = submit(alice, stack.rest_url, graph)
    assert receipt.status_code == 202, receipt.text
    job = wait_for(alice, stack.rest_url + receipt.headers["Location"])
    assert job["status"] == "succeeded", job
    assert sorted(o["kind"] for o in job["outputs"]) == ["output", "temp"]
    saved = next(o for o in job["outputs"] if o["kind"] == "output")
    assert saved["filename"].startswith("mine_")
    picture = Image.open(io.BytesIO(requests.get(saved["url"], timeout=10).content)).convert("RGB")
    assert picture.getpixel((0, 0)) == (245, 235, 225)
    assert_emptied(folders)


def test_two_identical_jobs_in_a_row_both_succeed_with_their_outputs(stack: Stack) -> None:
    alice = stack.client(0)
    graph = saved_square("same")
    graph["3"] = {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}
    for _ in range(2):
        receipt = submit(alice, stack.rest_url, graph)
        job = wait_for(alice, stack.rest_url + receipt.headers["Location"])
        assert job["status"] == "succeeded", job
        assert sorted(o["kind"] for o in job["outputs"]) == ["output", "temp"]
        for output in job["outputs"]:
            picture = Image.open(io.BytesIO(requests.get(output["url"], timeout=10).content))
            assert picture.convert("RGB").getpixel((0, 0)) == (0x33, 0x66, 0x99)
    assert_emptied(comfy_folders(stack))
