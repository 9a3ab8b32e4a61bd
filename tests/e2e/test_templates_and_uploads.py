"""Uploads reach ComfyUI's LoadImage byte for byte; templates run; Prefer: wait returns the finished job.

The stack runs under IAM with its roles from the template, and with a small upload limit so the storage's
own size check can be seen.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from PIL import Image

from tests.e2e.conftest import Stack, start_stack, stop_stack, wait_for

UPLOAD_MAX_BYTES = 64 * 1024


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(
        tmp_path_factory.mktemp("stack"), RUNNERS="1", UPLOAD_MAX_BYTES=str(UPLOAD_MAX_BYTES)
    )
    yield running
    stop_stack(running)


def ticket_for(stack: Stack, content_type: str = "image/png") -> dict[str, Any]:
    ticket = stack.client().post(
        f"{stack.rest_url}/v1/uploads", json={"content_type": content_type}, timeout=10
    )
    assert ticket.status_code == 201, ticket.text
    return dict(ticket.json())


def post_form(ticket: dict[str, Any], data: bytes, **fields: str) -> requests.Response:
    return requests.post(
        ticket["url"], data={**ticket["fields"], **fields}, files={"file": ("in.png", data)}, timeout=10
    )


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def upload_png(stack: Stack, image: Image.Image) -> str:
    ticket = ticket_for(stack)
    assert post_form(ticket, png_bytes(image)).status_code == 204
    return str(ticket["ref"])


def download(url: str) -> Image.Image:
    return Image.open(io.BytesIO(requests.get(url, timeout=10).content)).convert("RGB")


def test_an_uploaded_image_reaches_loadimage(stack: Stack) -> None:
    source = Image.new("RGB", (40, 24), (10, 200, 30))
    ref = upload_png(stack, source)
    graph = {
        "1": {"class_type": "LoadImage", "inputs": {"image": ref}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "upload"}},
    }
    client = stack.client()
    receipt = client.post(f"{stack.rest_url}/v1/jobs", json={"workflow": graph}, timeout=10)
    assert receipt.status_code == 202, receipt.text
    job = wait_for(client, stack.rest_url + receipt.headers["Location"])
    assert job["status"] == "succeeded", job
    result = download(job["outputs"][0]["url"])
    assert result.size == (40, 24)
    # The uploaded pixels, inverted in float32: 255 - 200 is 54.99999, saved as 54.
    assert result.getpixel((5, 5)) == (245, 54, 225)


def test_img2img_runs_with_an_upload_and_prefer_wait_returns_it_finished(stack: Stack) -> None:
    ref = upload_png(stack, Image.new("RGB", (64, 64), (0, 0, 0)))
    answer = stack.client().post(
        f"{stack.rest_url}/v1/jobs",
        json={"template": "img2img", "params": {"image": ref, "prompt": "a red door", "steps": 3}},
        headers={"Prefer": "wait=15"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["Preference-Applied"] == "wait=15"
    job = answer.json()
    assert job["status"] == "succeeded" and job["template"] == "img2img"
    assert download(job["outputs"][0]["url"]).size == (64, 64)


def test_txt2img_template_runs(stack: Stack) -> None:
    client = stack.client()
    answer = client.post(
        f"{stack.rest_url}/v1/jobs",
        json={
            "template": "txt2img",
            "params": {"prompt": "a lighthouse", "width": 256, "height": 128, "steps": 2},
        },
        timeout=10,
    )
    job = wait_for(client, stack.rest_url + answer.headers["Location"])
    assert job["status"] == "succeeded"
    assert download(job["outputs"][0]["url"]).size == (256, 128)


def loadimage_graph(ref: str) -> dict[str, Any]:
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": ref}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "in"}},
    }


def test_an_upload_not_yet_made_is_a_422_not_a_503(stack: Stack) -> None:
    # The API's HeadObject needs s3:GetObject on the inputs, and s3:ListBucket for a missing key to be
    # a 404 rather than a 403 (which the API would have to report as the bucket being unavailable).
    ticket = ticket_for(stack)
    answer = stack.client().post(
        f"{stack.rest_url}/v1/jobs", json={"workflow": loadimage_graph(ticket["ref"])}, timeout=10
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["pointer"] == "/workflow/1/inputs/image"


def test_the_storage_refuses_an_upload_over_the_limit_or_of_another_type(stack: Stack) -> None:
    ticket = ticket_for(stack)
    assert ticket["max_bytes"] == UPLOAD_MAX_BYTES
    too_large = post_form(ticket, b"\x89PNG" + bytes(UPLOAD_MAX_BYTES))
    assert too_large.status_code == 400 and "<Code>EntityTooLarge</Code>" in too_large.text
    retyped = post_form(ticket, b"\x89PNG small", **{"Content-Type": "image/gif"})
    assert retyped.status_code == 403 and "Policy Condition failed" in retyped.text
    # Neither left anything behind: a job naming the upload is still refused.
    answer = stack.client().post(
        f"{stack.rest_url}/v1/jobs", json={"workflow": loadimage_graph(ticket["ref"])}, timeout=10
    )
    assert answer.status_code == 422
