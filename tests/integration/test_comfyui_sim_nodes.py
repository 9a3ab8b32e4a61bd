"""Simulated text-to-image nodes, node behaviour, queue order and the command line."""

from __future__ import annotations

import copy
import io
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from PIL import Image

from local.comfyui_sim import SimulatorServer
from local.comfyui_sim.testing import Frame, RecordingSocket, load_workflow

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]
REPO = Path(__file__).resolve().parents[2]


def txt2img(steps: int = 8, seed: int = 42, width: int = 512, height: int = 384) -> dict[str, Any]:
    """The default ComfyUI text-to-image graph in API format."""
    return {
        "3": {
            "class_type": "KSampler",
            "inputs": {
                "seed": seed,
                "steps": steps,
                "cfg": 7.0,
                "sampler_name": "euler",
                "scheduler": "normal",
                "denoise": 1.0,
                "model": ["4", 0],
                "positive": ["6", 0],
                "negative": ["7", 0],
                "latent_image": ["5", 0],
            },
        },
        "4": {
            "class_type": "CheckpointLoaderSimple",
            "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"},
        },
        "5": {
            "class_type": "EmptyLatentImage",
            "inputs": {"width": width, "height": height, "batch_size": 1},
        },
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a lighthouse at dusk", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "sim_t2i", "images": ["8", 0]}},
    }


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimulatorServer]:
    with SimulatorServer(data_dir=tmp_path / "comfy", step_delay=0.01) as server:
        yield server


@pytest.fixture
def client(sim: SimulatorServer) -> Iterator[tuple[str, RecordingSocket]]:
    client_id = uuid.uuid4().hex
    sock = RecordingSocket(sim.ws_url, client_id)
    sock.wait_count(1)
    yield client_id, sock
    sock.close()


def post(
    sim: SimulatorServer, prompt: dict[str, Any], client_id: str | None, **extra: Any
) -> requests.Response:
    body: dict[str, Any] = {"prompt": copy.deepcopy(prompt), **extra}
    if client_id is not None:
        body["client_id"] = client_id
    return requests.post(f"{sim.url}/prompt", json=body, timeout=10)


def run(sim: SimulatorServer, sock: RecordingSocket, client_id: str, prompt: dict[str, Any]) -> list[Frame]:
    start = len(sock.frames)
    response = post(sim, prompt, client_id)
    assert response.status_code == 200, response.text
    end = sock.wait_done(response.json()["prompt_id"], start)
    return sock.frames[start : end + 1]


def of_type(frames: list[Frame], kind: str) -> list[dict[str, Any]]:
    return [f["data"] for f in frames if f["kind"] == "text" and f["type"] == kind]


def view(sim: SimulatorServer, image: dict[str, str]) -> Image.Image:
    response = requests.get(f"{sim.url}/view", params=image, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/png"
    picture = Image.open(io.BytesIO(response.content))
    picture.load()
    return picture


def test_ksampler_reports_each_step_and_vae_decode_draws_a_placeholder(
    sim: SimulatorServer, client: tuple[str, RecordingSocket]
) -> None:
    client_id, sock = client
    frames = run(sim, sock, client_id, txt2img(steps=8))

    progress = of_type(frames, "progress")
    assert [p["value"] for p in progress] == list(range(1, 9))
    assert {(p["max"], p["node"]) for p in progress} == {(8, "3")}
    for index, frame in enumerate(frames):
        if frame["kind"] == "text" and frame["type"] == "progress":
            before = frames[index - 1]
            assert before["type"] == "progress_state"
            entry = before["data"]["nodes"]["3"]
            assert (entry["state"], entry["value"], entry["max"]) == ("running", frame["data"]["value"], 8)
    order = [e["node"] for e in of_type(frames, "executing") if e["node"] is not None]
    assert sorted(order) == ["3", "4", "5", "6", "7", "8", "9"]
    assert order.index("3") < order.index("8") < order.index("9")
    assert of_type(frames, "execution_success")

    images = of_type(frames, "executed")[0]["output"]["images"]
    assert images == [{"filename": "sim_t2i_00001_.png", "subfolder": "", "type": "output"}]
    picture = view(sim, images[0])
    assert (picture.size, picture.mode) == ((512, 384), "RGB")
    assert len(picture.getcolors(1 << 20) or []) > 50, "a drawn placeholder, not a flat image"
    assert "KSampler" in picture.info["prompt"]


def test_ksampler_interrupt_stops_between_steps(tmp_path: Path) -> None:
    with SimulatorServer(data_dir=tmp_path / "comfy", step_delay=0.02) as sim:
        client_id = uuid.uuid4().hex
        sock = RecordingSocket(sim.ws_url, client_id)
        try:
            sock.wait_count(1)
            prompt_id = post(sim, txt2img(steps=200), client_id).json()["prompt_id"]
            sock.wait_for(lambda f: f.get("type") == "progress" and f["data"]["value"] == 3)
            began = time.monotonic()
            requests.post(f"{sim.url}/interrupt", json={"prompt_id": prompt_id}, timeout=10)
            end = sock.wait_done(prompt_id, timeout=5)
            assert time.monotonic() - began < 0.5
            frames = sock.frames[: end + 1]
            interrupted = of_type(frames, "execution_interrupted")
            assert [(i["node_id"], i["node_type"]) for i in interrupted] == [("3", "KSampler")]
            assert sorted(interrupted[0]["executed"]) == ["4", "5", "6", "7"]
            assert len(of_type(frames, "progress")) < 200
            assert not of_type(frames, "execution_success") and not of_type(frames, "execution_error")
            entry = requests.get(f"{sim.url}/history/{prompt_id}", timeout=10).json()[prompt_id]
            assert (entry["status"]["status_str"], entry["status"]["completed"]) == ("error", False)
        finally:
            sock.close()


def test_txt2img_cache_reuses_unchanged_nodes(
    sim: SimulatorServer, client: tuple[str, RecordingSocket]
) -> None:
    client_id, sock = client
    first = run(sim, sock, client_id, txt2img(steps=4))
    same = run(sim, sock, client_id, txt2img(steps=4))
    assert of_type(same, "execution_cached")[0]["nodes"] == ["3", "4", "5", "6", "7", "8", "9"]
    assert not of_type(same, "progress") and not [e for e in of_type(same, "executing") if e["node"]]
    assert of_type(same, "executed")[0]["output"] == of_type(first, "executed")[0]["output"]

    reseeded = run(sim, sock, client_id, txt2img(steps=4, seed=7))
    assert of_type(reseeded, "execution_cached")[0]["nodes"] == ["4", "5", "6", "7"]
    assert [e["node"] for e in of_type(reseeded, "executing") if e["node"]] == ["3", "8", "9"]
    assert len(of_type(reseeded, "progress")) == 4
    assert of_type(reseeded, "executed")[0]["output"]["images"][0]["filename"] == "sim_t2i_00002_.png"


def errors_of(response: requests.Response) -> list[dict[str, Any]]:
    assert response.status_code == 400, response.text
    return [e for entry in response.json()["node_errors"].values() for e in entry["errors"]]


def test_node_inputs_are_validated_from_their_specs(sim: SimulatorServer) -> None:
    prompt = txt2img()
    prompt["3"]["inputs"]["sampler_name"] = "bogus"
    (error,) = errors_of(post(sim, prompt, None))
    assert error["type"] == "value_not_in_list"
    assert re.fullmatch(r"sampler_name: 'bogus' not in \(list of length \d+\)", error["details"])
    assert error["extra_info"]["input_config"] is None

    prompt = txt2img()
    prompt["4"]["inputs"]["ckpt_name"] = "nope.safetensors"
    (error,) = errors_of(post(sim, prompt, None))
    assert error["details"] == (
        "ckpt_name: 'nope.safetensors' not in ['sd_xl_base_1.0.safetensors', 'v1-5-pruned-emaonly.safetensors']"
    )

    prompt = txt2img(steps=0)
    (error,) = errors_of(post(sim, prompt, None))
    assert (error["type"], error["message"], error["details"]) == (
        "value_smaller_than_min",
        "Value 0 smaller than min of 1",
        "steps",
    )

    prompt = txt2img()
    prompt["3"]["inputs"]["cfg"] = "abc"
    (error,) = errors_of(post(sim, prompt, None))
    assert error["type"] == "invalid_input_type"
    assert error["extra_info"]["exception_message"] == "could not convert string to float: 'abc'"

    prompt = txt2img()
    prompt["3"]["inputs"]["model"] = ["4", 1]
    (error,) = errors_of(post(sim, prompt, None))
    assert error["type"] == "return_type_mismatch"
    assert error["details"] == "model, received_type(CLIP) mismatch input_type(MODEL)"

    prompt = txt2img()
    prompt["5"]["inputs"]["width"] = "256"
    response = post(sim, prompt, None)
    assert response.status_code == 200
    prompt_id = response.json()["prompt_id"]
    deadline = time.monotonic() + 10
    while not (entry := requests.get(f"{sim.url}/history/{prompt_id}", timeout=10).json()):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert entry[prompt_id]["prompt"][2]["5"]["inputs"]["width"] == 256, "values are stored converted"


def test_image_nodes_compute_real_pixels(sim: SimulatorServer, client: tuple[str, RecordingSocket]) -> None:
    client_id, sock = client
    prompt = load_workflow("simple_invert_save")
    prompt["1"]["inputs"]["color"] = 0x123456
    images = of_type(run(sim, sock, client_id, prompt), "executed")[0]["output"]["images"]
    assert view(sim, images[0]).getpixel((5, 5)) == (0xED, 0xCB, 0xA9)

    mask_chain = load_workflow("runtime_error_imagetomask_alpha")
    mask_chain["1"]["inputs"]["color"] = 0x00FF00
    mask_chain["2"]["inputs"]["channel"] = "green"
    frames = run(sim, sock, client_id, mask_chain)
    images = of_type(frames, "executed")[0]["output"]["images"]
    assert view(sim, images[0]).getpixel((0, 0)) == (255, 255, 255)

    scale = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 40, "height": 20, "batch_size": 2, "color": 0}},
        "2": {
            "class_type": "ImageScale",
            "inputs": {
                "image": ["1", 0],
                "upscale_method": "bilinear",
                "width": 10,
                "height": 0,
                "crop": "disabled",
            },
        },
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}},
    }
    images = of_type(run(sim, sock, client_id, scale), "executed")[0]["output"]["images"]
    assert [i["type"] for i in images] == ["temp", "temp"]
    assert view(sim, images[1]).size == (10, 5)


def _gradient_png(alpha: bool) -> bytes:
    """A fixed 56x40 noise image, its alpha a left-to-right ramp, as uploaded to the real server."""
    rng = np.random.default_rng(7)
    pixels = (rng.random((40, 56, 4)) * 255).astype(np.uint8)
    pixels[..., 3] = np.linspace(0, 255, 56).astype(np.uint8)[None, :]
    buffer = io.BytesIO()
    Image.fromarray(pixels if alpha else pixels[..., :3], "RGBA" if alpha else "RGB").save(buffer, "PNG")
    return buffer.getvalue()


# Pixels ComfyUI 0.3.64 saved for these graphs (CPU, torch 2.13): it computes in float32 and truncates.
REAL_PIXELS: list[tuple[str, dict[str, Any], dict[tuple[int, int], tuple[int, int, int]]]] = [
    (
        "invert of 0x336699: blue 101, not 102",
        {"2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}}},
        {(0, 0): (204, 153, 101)},
    ),
    (
        "invert twice of 0x123457: (17, 51, 87), not the colour back",
        {
            "1": {"inputs": {"color": 0x123457}},
            "2": {"class_type": "ImageInvert", "inputs": {"image": ["3", 0]}},
            "3": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        },
        {(0, 0): (17, 51, 87)},
    ),
    (
        "blur r5 sigma 2 of the uploaded image",
        {
            "1": {"class_type": "LoadImage", "inputs": {"image": "px/rgb.png"}},
            "2": {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": 5, "sigma": 2.0}},
        },
        {(0, 0): (128, 136, 128), (18, 20): (127, 132, 120), (55, 39): (123, 137, 129)},
    ),
    (
        "LoadImage's mask is one minus alpha",
        {
            "1": {"class_type": "LoadImage", "inputs": {"image": "px/rgba.png"}},
            "2": {"class_type": "MaskToImage", "inputs": {"mask": ["1", 1]}},
        },
        {(0, 0): (255, 255, 255), (18, 20): (171, 171, 171), (55, 39): (0, 0, 0)},
    ),
    (
        "lanczos scale with a centre crop",
        {
            "1": {"class_type": "LoadImage", "inputs": {"image": "px/rgb.png"}},
            "2": {
                "class_type": "ImageScale",
                "inputs": {
                    "image": ["1", 0],
                    "upscale_method": "lanczos",
                    "width": 30,
                    "height": 30,
                    "crop": "center",
                },
            },
        },
        {(0, 0): (23, 77, 169), (10, 15): (145, 166, 202), (29, 29): (57, 110, 49)},
    ),
]


@pytest.mark.parametrize(("case", "nodes", "expected"), REAL_PIXELS, ids=[c[0] for c in REAL_PIXELS])
def test_pixels_match_the_real_server(
    sim: SimulatorServer,
    client: tuple[str, RecordingSocket],
    case: str,
    nodes: dict[str, Any],
    expected: dict[tuple[int, int], tuple[int, int, int]],
) -> None:
    client_id, sock = client
    for name, alpha in (("rgb.png", False), ("rgba.png", True)):
        uploaded = requests.post(
            f"{sim.url}/upload/image",
            files={"image": (name, _gradient_png(alpha))},
            data={"subfolder": "px", "overwrite": "true"},
            timeout=10,
        )
        assert uploaded.status_code == 200
    prompt: dict[str, Any] = {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 16, "height": 12, "batch_size": 1, "color": 0x336699},
        },
        "9": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "px"}},
    }
    for node_id, node in nodes.items():
        base = prompt.get(node_id, {})
        prompt[node_id] = {**base, **node, "inputs": {**base.get("inputs", {}), **node["inputs"]}}
    images = of_type(run(sim, sock, client_id, prompt), "executed")[0]["output"]["images"]
    saved = view(sim, images[0]).convert("RGB")
    assert {xy: saved.getpixel(xy) for xy in expected} == expected


def test_front_and_explicit_numbers_order_the_queue(tmp_path: Path) -> None:
    with SimulatorServer(data_dir=tmp_path / "comfy", node_delay=0.15) as sim:
        client_id = uuid.uuid4().hex
        sock = RecordingSocket(sim.ws_url, client_id)
        try:
            sock.wait_count(1)
            prompt = load_workflow("simple_invert_save")
            first = post(sim, prompt, client_id).json()
            sock.wait_for(lambda f: f.get("type") == "execution_start")
            later = post(sim, prompt, client_id).json()
            front = post(sim, prompt, client_id, front=True).json()
            explicit = post(sim, prompt, client_id, number=0.5).json()
            assert [first["number"], later["number"], front["number"], explicit["number"]] == [0, 1, -2, 0.5]
            assert requests.get(f"{sim.url}/prompt", timeout=10).json() == {
                "exec_info": {"queue_remaining": 4}
            }
            sock.wait_done(later["prompt_id"])
            done = [
                f["data"]["prompt_id"]
                for f in sock.frames
                if f.get("type") == "executing" and not f["data"]["node"]
            ]
            ids = [first["prompt_id"], front["prompt_id"], explicit["prompt_id"], later["prompt_id"]]
            assert done == ids
        finally:
            sock.close()


def test_stale_interrupt_does_not_hit_the_next_prompt(
    sim: SimulatorServer, client: tuple[str, RecordingSocket]
) -> None:
    client_id, sock = client
    requests.post(f"{sim.url}/interrupt", timeout=10)
    frames = run(sim, sock, client_id, load_workflow("simple_invert_save"))
    assert of_type(frames, "execution_success")


def test_history_upload_and_view_edge_cases(
    sim: SimulatorServer, client: tuple[str, RecordingSocket]
) -> None:
    client_id, sock = client
    ids = []
    for color in (1, 2, 3):
        prompt = load_workflow("simple_invert_save")
        prompt["1"]["inputs"]["color"] = color
        run(sim, sock, client_id, prompt)
        ids.append(of_type(sock.frames, "execution_start")[-1]["prompt_id"])
    assert list(requests.get(f"{sim.url}/history?max_items=2", timeout=10).json()) == ids[1:]
    requests.post(f"{sim.url}/history", json={"delete": [ids[0]]}, timeout=10)
    assert list(requests.get(f"{sim.url}/history", timeout=10).json()) == ids[1:]
    requests.post(f"{sim.url}/history", json={"clear": True}, timeout=10)
    assert requests.get(f"{sim.url}/history", timeout=10).json() == {}

    def upload(content: bytes, name: str = "pic.png") -> dict[str, Any]:
        files = {"image": (name, content, "image/png")}
        response = requests.post(f"{sim.url}/upload/image", files=files, timeout=10)
        assert response.status_code == 200
        body: dict[str, Any] = response.json()
        return body

    one, two = io.BytesIO(), io.BytesIO()
    Image.new("RGB", (4, 4), (1, 2, 3)).save(one, format="PNG")
    Image.new("RGB", (4, 4), (9, 9, 9)).save(two, format="PNG")
    assert upload(one.getvalue()) == {"name": "pic.png", "subfolder": "", "type": "input"}
    assert upload(one.getvalue())["name"] == "pic.png", "identical bytes are not stored twice"
    assert upload(two.getvalue())["name"] == "pic (1).png"
    info = requests.get(f"{sim.url}/object_info/LoadImage", timeout=10).json()
    assert info["LoadImage"]["input"]["required"]["image"][0] == ["pic (1).png", "pic.png"]

    checks = [
        ({"filename": "pic.png", "type": "input", "subfolder": "../output"}, 403),
        ({"filename": "pic.png", "type": "nowhere"}, 400),
        ({"filename": "/etc/passwd"}, 400),
        ({"type": "input"}, 404),
        ({"filename": "pic.png", "type": "input"}, 200),
        ({"filename": "pic.png [input]"}, 200),
    ]
    for params, status in checks:
        assert requests.get(f"{sim.url}/view", params=params, timeout=10).status_code == status, params


def test_command_line_prints_the_address_and_stops_on_sigterm(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "local.comfyui_sim", "--host", "127.0.0.1", "--port", "0"]
    command += ["--step-delay", "0.01", "--data-dir", str(tmp_path / "comfy")]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        match = re.fullmatch(r"comfyui-sim listening on (http://127\.0\.0\.1:(\d+))", line)
        assert match, line
        assert requests.get(f"{match.group(1)}/system_stats", timeout=10).status_code == 200
        assert (tmp_path / "comfy" / "output").is_dir()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)


def test_loadimage_resolves_annotations_and_paths_as_comfyui_does(
    sim: SimulatorServer, client: tuple[str, RecordingSocket]
) -> None:
    """What a tenant could read from another's files if a file input could name anything."""
    client_id, sock = client
    secret = {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0x336699},
        },
        "2": {
            "class_type": "SaveImage",
            "inputs": {"images": ["1", 0], "filename_prefix": "tenant-a/secret"},
        },
    }
    saved = of_type(run(sim, sock, client_id, secret), "executed")[0]["output"]["images"][0]
    assert (saved["subfolder"], saved["filename"]) == ("tenant-a", "secret_00001_.png")
    for name in ("tenant-a/secret_00001_.png [output]", "../output/tenant-a/secret_00001_.png"):
        steal = {
            "1": {"class_type": "LoadImage", "inputs": {"image": name}},
            "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
        }
        shown = of_type(run(sim, sock, client_id, steal), "executed")[0]["output"]["images"][0]
        assert view(sim, shown).convert("RGB").getpixel((0, 0)) == (0x33, 0x66, 0x99), name
