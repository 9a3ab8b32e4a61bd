"""Uploads reach ComfyUI's LoadImage byte for byte; templates run; Prefer: wait returns the finished job."""

from __future__ import annotations

import io

import requests
from PIL import Image

from tests.e2e.conftest import Stack, wait_for


def upload_png(stack: Stack, image: Image.Image) -> str:
    ticket = stack.client().post(
        f"{stack.rest_url}/v1/uploads", json={"content_type": "image/png"}, timeout=10
    )
    assert ticket.status_code == 201
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    put = requests.put(
        ticket.json()["url"], data=buffer.getvalue(), headers=ticket.json()["headers"], timeout=10
    )
    assert put.status_code == 200
    return str(ticket.json()["ref"])


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
