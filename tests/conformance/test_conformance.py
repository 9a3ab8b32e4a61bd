"""Does this ComfyUI keep the service's promises? The end-to-end checks that need only its built-in,
model-free nodes, through the whole local stack: REST, queue, runner, S3, the ComfyUI under test.

Run against a real ComfyUI with ``make conformance COMFYUI_URL=http://host:port`` (the simulator when
none is given; ``make test`` runs it so). Pixel values are those ComfyUI 0.3.64 computes (float32,
truncated on save).
"""

from __future__ import annotations

import io
import random
import time
from typing import Any

import requests
from PIL import Image

from tests.conftest import load_workflow
from tests.e2e.conftest import Stack, submit, wait_for

TIMEOUT = 60


def run(stack: Stack, workflow: dict[str, Any]) -> dict[str, Any]:
    client = stack.client()
    receipt = submit(client, stack.rest_url, workflow)
    assert receipt.status_code == 202, receipt.text
    return wait_for(client, stack.rest_url + receipt.headers["Location"], timeout=TIMEOUT)


def download(output: dict[str, Any]) -> Image.Image:
    answer = requests.get(output["url"], timeout=10)
    assert answer.status_code == 200
    return Image.open(io.BytesIO(answer.content)).convert("RGB")


def invert_graph(color: int, width: int = 24, height: int = 16) -> dict[str, Any]:
    workflow = load_workflow("simple_invert_save.json")
    workflow["1"]["inputs"].update(width=width, height=height, color=color)
    return workflow


def fresh_width() -> int:
    # A size never asked before: ComfyUI would otherwise answer an identical graph from its cache.
    return random.randrange(17, 4000)


def test_success_with_outputs(stack: Stack) -> None:
    width = fresh_width()
    job = run(stack, invert_graph(0x123456, width, 8))
    assert job["status"] == "succeeded", job
    [output] = job["outputs"]
    assert (output["node_id"], output["content_type"]) == ("3", "image/png")
    image = download(output)
    assert image.size == (width, 8) and image.getpixel((0, 0)) == (237, 203, 169)


def test_float_pixels_are_truncated_as_comfyui_computes_them(stack: Stack) -> None:
    job = run(stack, invert_graph(0x336699, fresh_width(), 4))
    assert job["status"] == "succeeded", job
    # 1 - 153/255 in float32, times 255, is 101.99999: saved as 101, not 102.
    assert download(job["outputs"][0]).getpixel((0, 0)) == (204, 153, 101)


def test_validation_error_names_the_node(stack: Stack) -> None:
    workflow = invert_graph(0)
    del workflow["3"]["inputs"]["images"]
    job = run(stack, workflow)
    assert job["status"] == "failed" and job["attempts"] == 1
    error = job["error"]
    assert (error["code"], error["node_id"], error["node_type"]) == ("validation_error", "3", "SaveImage")
    assert "images" in error["message"]


def test_unknown_node_type_is_named(stack: Stack) -> None:
    workflow = invert_graph(0)
    workflow["2"]["class_type"] = "NoSuchNodeAnywhere"
    job = run(stack, workflow)
    error = job["error"]
    assert job["status"] == "failed"
    assert (error["code"], error["node_id"], error["node_type"]) == (
        "validation_error",
        "2",
        "NoSuchNodeAnywhere",
    )


def test_a_partly_invalid_graph_fails_listing_every_node_error(stack: Stack) -> None:
    workflow = invert_graph(0, fresh_width(), 8)
    workflow["4"] = {"class_type": "SaveImage", "inputs": {"filename_prefix": "no_images"}}
    workflow["5"] = {
        "class_type": "ImageBlur",
        "inputs": {"image": ["1", 0], "blur_radius": 99, "sigma": 1.0},
    }
    workflow["6"] = {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "blurred"}}
    job = run(stack, workflow)
    assert job["status"] == "failed" and job["outputs"] == [], job
    error = job["error"]
    assert error["code"] == "validation_error"
    listed = {(e["node_id"], e["node_type"], e["type"]) for e in error["details"]["errors"]}
    assert listed == {
        ("4", "SaveImage", "required_input_missing"),
        ("5", "ImageBlur", "value_bigger_than_max"),
    }


def test_an_execution_error_has_a_clean_message(stack: Stack) -> None:
    workflow = load_workflow("runtime_error_imagetomask_alpha.json")
    workflow["1"]["inputs"]["width"] = fresh_width()
    job = run(stack, workflow)
    assert job["status"] == "failed"
    error = job["error"]
    assert (error["code"], error["node_id"], error["node_type"]) == ("execution_error", "2", "ImageToMask")
    assert "out of bounds" in error["message"] and error["details"]["exception_type"] == "IndexError"
    frames = error["details"]["traceback"]
    assert frames, "the traceback keeps file names, lines and functions"
    # No path of the server's: file names only, no source lines.
    for text in (error["message"], *frames):
        assert "/" not in text and "\\" not in text, text


def test_cancel_interrupts_a_running_job(stack: Stack) -> None:
    client = stack.client()
    workflow = load_workflow("slow_blur_chain.json")
    workflow["1"]["inputs"]["color"] = random.randrange(2**24)
    receipt = submit(client, stack.rest_url, workflow)
    url = stack.rest_url + receipt.headers["Location"]
    running = wait_for(client, url, until={"running", "succeeded", "failed", "canceled"})
    assert running["status"] == "running", running
    canceled_at = time.monotonic()
    assert client.delete(url, timeout=10).status_code == 202
    job = wait_for(client, url, timeout=TIMEOUT)
    assert job["status"] == "canceled", job
    assert job["outputs"] == []
    print(f"cancel took {time.monotonic() - canceled_at:.2f} s to end the job")


def test_a_cached_rerun_still_has_its_outputs(stack: Stack) -> None:
    workflow = invert_graph(random.randrange(2**24), fresh_width(), 8)
    first = run(stack, workflow)
    again = run(stack, workflow)  # ComfyUI serves every node from its cache and names the first file
    assert first["status"] == again["status"] == "succeeded", again
    assert len(again["outputs"]) == 1
    assert download(again["outputs"][0]).tobytes() == download(first["outputs"][0]).tobytes()


def test_an_upload_reaches_loadimage(stack: Stack) -> None:
    client = stack.client()
    ticket = client.post(f"{stack.rest_url}/v1/uploads", json={"content_type": "image/png"}, timeout=10)
    assert ticket.status_code == 201, ticket.text
    buffer = io.BytesIO()
    Image.new("RGB", (40, 24), (10, 200, 30)).save(buffer, format="PNG")
    # A presigned form POST: the ticket's fields, then the file.
    form = requests.post(
        ticket.json()["url"], data=ticket.json()["fields"], files={"file": buffer.getvalue()}, timeout=10
    )
    assert form.status_code == 204, form.text
    graph = {
        "1": {"class_type": "LoadImage", "inputs": {"image": ticket.json()["ref"]}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "upload"}},
    }
    job = run(stack, graph)
    assert job["status"] == "succeeded", job
    result = download(job["outputs"][0])
    assert result.size == (40, 24) and result.getpixel((5, 5)) == (245, 54, 225)


def test_save_image_websocket_images_are_outputs(stack: Stack) -> None:
    info = requests.get(f"{stack.endpoints['comfyui_url']}/object_info/SaveImageWebsocket", timeout=10).json()
    assert info, "this ComfyUI has no SaveImageWebsocket node (custom_nodes/websocket_image_save.py)"
    width = fresh_width()
    graph = {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": width, "height": 8, "batch_size": 3, "color": 0x336699},
        },
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImageWebsocket", "inputs": {"images": ["2", 0]}},
    }
    job = run(stack, graph)
    assert job["status"] == "succeeded", job
    assert [(o["node_id"], o["content_type"]) for o in job["outputs"]] == [("3", "image/png")] * 3
    for output in job["outputs"]:
        image = download(output)
        assert image.size == (width, 8) and image.getpixel((0, 0)) == (204, 153, 101)
    assert [o["filename"] for o in job["outputs"]] == [f"websocket_{n:05d}_.png" for n in (1, 2, 3)]
