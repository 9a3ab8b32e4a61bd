"""The simulator against the recorded ComfyUI transcripts: same frames, same HTTP answers."""

from __future__ import annotations

import copy
import io
import json
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image

from local.comfyui_sim import SimulatorServer
from local.comfyui_sim.testing import (
    RecordingSocket,
    http_records,
    is_done,
    load_transcript,
    prompt_ids,
    segments,
    shapes,
    transcript_frames,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

SocketFactory = Callable[..., RecordingSocket]


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimulatorServer]:
    with SimulatorServer(data_dir=tmp_path / "comfy", step_delay=0.01) as server:
        yield server


@pytest.fixture
def sockets(sim: SimulatorServer) -> Iterator[SocketFactory]:
    opened: list[RecordingSocket] = []

    def connect(client_id: str | None = None, feature_flags: bool = False) -> RecordingSocket:
        sock = RecordingSocket(sim.ws_url, client_id, feature_flags)
        opened.append(sock)
        return sock

    yield connect
    for sock in opened:
        sock.close()


def new_id() -> str:
    return uuid.uuid4().hex


def submit(
    sim: SimulatorServer, recorded_request: dict[str, Any], client_id: str | None
) -> requests.Response:
    body = copy.deepcopy(recorded_request)
    if client_id is not None and "client_id" in body:
        body["client_id"] = client_id
    return requests.post(f"{sim.url}/prompt", json=body, timeout=10)


def without_tracebacks(value: Any) -> Any:
    """Tracebacks name source files, which differ; the rest of an error body must match exactly."""
    if isinstance(value, dict):
        return {k: ("<traceback>" if k == "traceback" else without_tracebacks(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [without_tracebacks(v) for v in value]
    return value


def filenames(output: dict[str, Any]) -> list[str]:
    return [image["filename"] for image in output.get("images", [])]


def assert_history_like(
    got: dict[str, Any], recorded: dict[str, Any], prompt_id: str, client_id: str | None, exact_files: bool
) -> None:
    """Compare a /history/{id} body with a recorded one, ignoring ids, timestamps and set ordering."""
    assert list(got) == [prompt_id]
    entry = got[prompt_id]
    want = next(iter(recorded.values()))
    assert list(entry) == list(want)
    _number, pid, graph, extra, outputs = entry["prompt"]
    assert pid == prompt_id
    assert graph == want["prompt"][2]
    want_extra = dict(want["prompt"][3])
    if "client_id" in want_extra:
        want_extra["client_id"] = client_id
    assert extra == want_extra
    assert sorted(outputs) == sorted(want["prompt"][4])
    assert set(entry["outputs"]) == set(want["outputs"])
    for node_id, output in want["outputs"].items():
        assert set(entry["outputs"][node_id]) == set(output)
        if "text" in output:
            assert entry["outputs"][node_id]["text"] == output["text"]
        if exact_files:
            assert filenames(entry["outputs"][node_id]) == filenames(output)
        else:
            assert len(filenames(entry["outputs"][node_id])) == len(filenames(output))
    assert {k: v for k, v in entry["status"].items() if k != "messages"} == {
        k: v for k, v in want["status"].items() if k != "messages"
    }
    assert [m[0] for m in entry["status"]["messages"]] == [m[0] for m in want["status"]["messages"]]
    for (_, data), (_, want_data) in zip(
        entry["status"]["messages"], want["status"]["messages"], strict=True
    ):
        assert list(data) == list(want_data)
        assert data["prompt_id"] == prompt_id
    assert entry["meta"] == want["meta"]


def history(sim: SimulatorServer, prompt_id: str) -> dict[str, Any]:
    body: dict[str, Any] = requests.get(f"{sim.url}/history/{prompt_id}", timeout=10).json()
    return body


def run_segments(
    sim: SimulatorServer,
    sock: RecordingSocket,
    records: list[dict[str, Any]],
    client_id: str,
    exact_files: bool,
    start: int = 1,
) -> list[str]:
    """Replay every recorded POST /prompt and compare each prompt's frames and history with the record."""
    expected = segments(transcript_frames(records, "main")[start:])
    posts = http_records(records, "POST", "/prompt")
    histories = {r["path"].rsplit("/", 1)[1]: r for r in http_records(records, "GET", "/history/")}
    ids = []
    for post, want in zip(posts, expected, strict=True):
        response = submit(sim, post["req"], client_id)
        assert response.status_code == post["status"]
        assert list(response.json()) == list(post["resp"])
        assert response.json()["node_errors"] == post["resp"]["node_errors"]
        prompt_id = response.json()["prompt_id"]
        if "prompt_id" in post["req"]:
            assert prompt_id == post["req"]["prompt_id"]
        end = sock.wait_done(prompt_id, start)
        got = sock.frames[start : end + 1]
        assert shapes(got) == shapes(want)
        assert prompt_ids(got) == {prompt_id}
        recorded_history = histories.get(post["resp"]["prompt_id"])
        if recorded_history is not None:
            recorded = recorded_history["resp"]
            assert_history_like(history(sim, prompt_id), recorded, prompt_id, client_id, exact_files)
        ids.append(prompt_id)
        start = end + 1
    return ids


def test_success_sequence_numbers_history_and_view(sim: SimulatorServer, sockets: SocketFactory) -> None:
    records = load_transcript("success")
    client_id = new_id()
    sock = sockets(client_id)
    sock.wait_count(1)
    assert shapes(sock.frames[:1]) == shapes(transcript_frames(records, "main")[:1])
    assert sock.frames[0]["data"]["sid"] == client_id

    ids = run_segments(sim, sock, records, client_id, exact_files=True)

    numbers = [history(sim, pid)[pid]["prompt"][0] for pid in ids]
    assert numbers == [r["resp"]["number"] for r in http_records(records, "POST", "/prompt")] == [0, 1, -2]
    for view in http_records(records, "GET", "/view"):
        response = requests.get(f"{sim.url}{view['path']}", timeout=10)
        assert response.status_code == view["status"]
        assert response.headers["Content-Type"] == view["resp_headers"]["Content-Type"]
        assert response.headers["Content-Disposition"] == view["resp_headers"]["Content-Disposition"]
        assert response.content[:16].hex() == view["resp_head_hex"]
        assert Image.open(io.BytesIO(response.content)).size == (64, 64)
    queue = http_records(records, "GET", "/queue")[0]
    assert requests.get(f"{sim.url}/queue", timeout=10).json() == queue["resp"]
    latest = requests.get(f"{sim.url}/history?max_items=1", timeout=10).json()
    assert list(latest) == [ids[-1]]


def test_validation_errors_match_and_send_no_frames(sim: SimulatorServer, sockets: SocketFactory) -> None:
    records = load_transcript("validation")
    client_id = new_id()
    sock = sockets(client_id)
    sock.wait_count(1)
    expected = segments(transcript_frames(records, "main")[1:])
    seen = 1
    for index, post in enumerate(http_records(records, "POST", "/prompt")):
        if "req_raw" in post:
            headers = {"Content-Type": "application/json"}
            response = requests.post(f"{sim.url}/prompt", data=post["req_raw"], headers=headers, timeout=10)
        else:
            response = submit(sim, post["req"], client_id)
        assert response.status_code == post["status"], post["req"] if "req" in post else post["req_raw"]
        assert response.headers["Content-Type"] == post["content_type"]
        if post["status"] == 500:
            assert response.text == post["resp_text"]
            continue
        body = response.json()
        if post["status"] == 400:
            assert without_tracebacks(body) == without_tracebacks(post["resp"])
            continue
        # The one partially valid prompt: 200, the bad branch in node_errors, the good branch runs.
        assert body["node_errors"] == post["resp"]["node_errors"]
        assert body["number"] == index, "rejected prompts still take a number"
        end = sock.wait_done(body["prompt_id"], seen)
        # Nothing arrived for the rejected prompts before this one.
        assert shapes(sock.frames[seen : end + 1]) == shapes(expected[0])
        seen = end + 1

    # Still nothing for the rejected prompts after it: the next frame belongs to a new valid prompt.
    good = next(p for p in http_records(records, "POST", "/prompt") if p["status"] == 200)
    response = submit(sim, good["req"], client_id)
    end = sock.wait_done(response.json()["prompt_id"], seen)
    assert shapes(sock.frames[seen : end + 1])[:2] == [
        ("status", ("status",), 1),
        ("status", ("status",), 1),
    ]


def test_validation_traceback_is_text_lines(sim: SimulatorServer) -> None:
    prompt = {"2": {"class_type": "SaveImage", "inputs": {"images": ["7", 0], "filename_prefix": "x"}}}
    body = requests.post(f"{sim.url}/prompt", json={"prompt": prompt}, timeout=10).json()
    error = body["node_errors"]["2"]["errors"][0]
    assert error["type"] == "exception_during_validation"
    assert error["extra_info"]["exception_type"] == "KeyError"
    assert all(line.startswith('  File "') for line in error["extra_info"]["traceback"])
    assert body["error"]["details"] == "Exception when validating node: '7'"


def test_execution_error_frames_inputs_and_history(sim: SimulatorServer, sockets: SocketFactory) -> None:
    records = load_transcript("execution_error")
    client_id = new_id()
    main = sockets(client_id)
    observer = sockets(new_id())
    main.wait_count(1)
    observer.wait_count(1)

    run_segments(sim, main, records, client_id, exact_files=True)

    errors = [f for f in main.frames if f["kind"] == "text" and f["type"] == "execution_error"]
    recorded = [
        f
        for f in transcript_frames(records, "main")
        if f["kind"] == "text" and f["type"] == "execution_error"
    ]
    for got, want in zip(errors, recorded, strict=True):
        # The input tensor is printed in torch's summarised style, byte for byte.
        assert got["data"]["current_inputs"] == want["data"]["current_inputs"]
        assert all(line.startswith('  File "') for line in got["data"]["traceback"])
        assert isinstance(got["data"]["timestamp"], int)
    want_observer = transcript_frames(records, "observer")
    observer.wait_count(len(want_observer))
    assert shapes(observer.frames) == shapes(want_observer)
    assert requests.get(f"{sim.url}/queue", timeout=10).json() == {"queue_running": [], "queue_pending": []}


def test_cached_rerun_points_at_earlier_files(
    sim: SimulatorServer, sockets: SocketFactory, tmp_path: Path
) -> None:
    records = load_transcript("cached")
    client_id = new_id()
    sock = sockets(client_id)
    sock.wait_count(1)

    ids = run_segments(sim, sock, records, client_id, exact_files=True)

    outputs = [history(sim, pid)[pid]["outputs"]["3"]["images"][0]["filename"] for pid in ids]
    assert outputs == ["proto_cached_00001_.png", "proto_cached_00001_.png", "proto_cached_b_00001_.png"]
    written = sorted(p.name for p in (tmp_path / "comfy" / "output").iterdir())
    assert written == ["proto_cached_00001_.png", "proto_cached_b_00001_.png"], "a cached run writes no file"


@pytest.mark.parametrize("scenario", ["progress_binary", "progress_binary_ff"])
def test_progress_and_binary_frames(scenario: str, sim: SimulatorServer, sockets: SocketFactory) -> None:
    records = load_transcript(scenario)
    with_flags = scenario.endswith("_ff")
    client_id = new_id()
    main = sockets(client_id, feature_flags=with_flags)
    observer = sockets(new_id())
    want_main = transcript_frames(records, "main")
    want_observer = transcript_frames(records, "observer")
    main.wait_count(2 if with_flags else 1)
    observer.wait_count(1)

    post = http_records(records, "POST", "/prompt")[0]
    response = submit(sim, post["req"], client_id)
    prompt_id = response.json()["prompt_id"]
    main.wait_done(prompt_id)
    observer.wait_count(len(want_observer))

    assert shapes(main.frames) == shapes(want_main)
    assert prompt_ids(main.frames) == {prompt_id}
    assert shapes(observer.frames) == shapes(want_observer)
    previews = [f for f in main.frames if f["kind"] == "binary" and f["event"] in (1, 4)]
    assert len(previews) == 4
    for frame in previews:
        assert Image.open(io.BytesIO(frame["payload"])).size == (256, 256)
        if with_flags:
            assert frame["metadata"]["prompt_id"] == prompt_id
    progress = [f["data"]["value"] for f in main.frames if f["kind"] == "text" and f["type"] == "progress"]
    assert progress == [0, 1, 2, 3]

    recorded_history = http_records(records, "GET", "/history/")[0]["resp"]
    exact = not with_flags  # the recorded ff run followed the plain one on the same server
    assert_history_like(history(sim, prompt_id), recorded_history, prompt_id, client_id, exact_files=exact)
    for image in history(sim, prompt_id)[prompt_id]["outputs"]["6"]["images"]:
        query = {"filename": image["filename"], "subfolder": image["subfolder"], "type": image["type"]}
        view = requests.get(f"{sim.url}/view", params=query, timeout=10)
        assert view.status_code == 200
        assert view.headers["Content-Type"] == "image/png"
        assert Image.open(io.BytesIO(view.content)).size == (256, 256)


def test_without_client_id_only_broadcasts_arrive(sim: SimulatorServer, sockets: SocketFactory) -> None:
    records = load_transcript("no_client_id")
    sock = sockets(new_id())
    want = transcript_frames(records, "main")
    sock.wait_count(1)

    post = http_records(records, "POST", "/prompt")[0]
    assert "client_id" not in post["req"]
    prompt_id = submit(sim, post["req"], None).json()["prompt_id"]
    sock.wait_count(len(want))

    assert shapes(sock.frames) == shapes(want)
    assert not any(is_done(f) for f in sock.frames)
    recorded = [r for r in http_records(records, "GET", "/history/") if r.get("resp")][-1]["resp"]
    assert_history_like(history(sim, prompt_id), recorded, prompt_id, None, exact_files=False)


def test_upload_then_load_image(sim: SimulatorServer, sockets: SocketFactory) -> None:
    records = load_transcript("upload")
    client_id = new_id()
    sock = sockets(client_id)
    sock.wait_count(1)

    upload = http_records(records, "POST", "/upload/image")[0]
    fields = upload["req_multipart"]
    picture = io.BytesIO()
    Image.effect_noise((48, 40), 64).convert("RGBA").save(picture, format="PNG")
    files = {"image": ("proto_input.png", picture.getvalue(), "image/png")}
    form = {k: v for k, v in fields.items() if k != "image"}
    response = requests.post(f"{sim.url}/upload/image", files=files, data=form, timeout=10)
    assert response.status_code == upload["status"]
    assert response.json() == upload["resp"]

    posts = http_records(records, "POST", "/prompt")
    good, bad = posts
    prompt_id = submit(sim, good["req"], client_id).json()["prompt_id"]
    end = sock.wait_done(prompt_id, 1)
    assert shapes(sock.frames[1 : end + 1]) == shapes(transcript_frames(records, "main")[1:])
    recorded = http_records(records, "GET", "/history/")[0]["resp"]
    assert_history_like(history(sim, prompt_id), recorded, prompt_id, client_id, exact_files=False)

    outputs = history(sim, prompt_id)[prompt_id]["outputs"]
    assert re.fullmatch(r"ComfyUI_temp_[a-z]{5}_00001_\.png", outputs["4"]["images"][0]["filename"])
    views = [
        {"filename": outputs["4"]["images"][0]["filename"], "subfolder": "", "type": "temp"},
        {"filename": "proto_loaded_00001_.png", "subfolder": "", "type": "output"},
        {"filename": "proto_input.png", "subfolder": "proto", "type": "input"},
    ]
    for query in views:
        view = requests.get(f"{sim.url}/view", params=query, timeout=10)
        assert view.status_code == 200
        assert view.headers["Content-Type"] == "image/png"
        assert Image.open(io.BytesIO(view.content)).size == (48, 40)
    assert view.content == picture.getvalue()

    response = submit(sim, bad["req"], client_id)
    assert response.status_code == 400
    body, want = response.json(), bad["resp"]
    for errors in (body["node_errors"], want["node_errors"]):
        for entry in errors.values():
            entry["dependent_outputs"].sort()  # recorded in set order
    assert body == want


def test_client_ids_generated_and_replaced(sim: SimulatorServer, sockets: SocketFactory) -> None:
    records = load_transcript("client_ids")
    no_query = sockets()
    no_query.wait_count(1)
    sid = no_query.frames[0]["data"]["sid"]
    assert re.fullmatch(r"[0-9a-f]{32}", sid)

    first, second = http_records(records, "POST", "/prompt")
    first_id = submit(sim, first["req"], sid).json()["prompt_id"]
    no_query.wait_done(first_id, 1)

    shared_id = new_id()
    dup_old = sockets(shared_id)
    dup_old.wait_count(1)
    dup_new = sockets(shared_id)
    dup_new.wait_count(1)
    second_id = submit(sim, second["req"], shared_id).json()["prompt_id"]
    dup_new.wait_done(second_id)
    want_no_query = transcript_frames(records, "no_query")
    no_query.wait_count(len(want_no_query))

    assert shapes(dup_new.frames) == shapes(transcript_frames(records, "dup_new"))
    assert shapes(no_query.frames) == shapes(want_no_query)
    assert len(dup_old.frames) == 1, "the replaced socket gets nothing after its first status"


def test_endpoints_match_recorded_answers(sim: SimulatorServer) -> None:
    records = load_transcript("endpoints")
    exact = {"/features", "/queue", "/prompt", "/object_info/SaveImage", "/object_info/EmptyImage"}
    exact |= {"/object_info/NoSuchNode", "/history?max_items=1", "/embeddings", "/models"}
    for record in http_records(records, "GET", "/"):
        path = record["path"]
        if path.startswith("/history/"):
            exact.add(path)
        response = requests.get(f"{sim.url}{path}", timeout=10)
        assert response.status_code == record["status"], path
        if record["status"] != 200:
            assert response.content == b""
            continue
        assert response.headers["Content-Type"] == record["content_type"], path
        if path in exact:
            assert response.json() == record["resp"], path
    stats = requests.get(f"{sim.url}/system_stats", timeout=10).json()
    recorded = http_records(records, "GET", "/system_stats")[0]["resp"]
    assert list(stats) == list(recorded)
    assert list(stats["system"]) == list(recorded["system"])
    assert list(stats["devices"][0]) == list(recorded["devices"][0])
    assert stats["system"]["comfyui_version"] == recorded["system"]["comfyui_version"]
    info = requests.get(f"{sim.url}/object_info", timeout=10).json()
    for name in ("EmptyImage", "ImageInvert", "ImageBlur", "SaveImage", "SaveImageWebsocket", "PreviewImage"):
        assert info[name]["name"] == name
    for name in ("GetImageSize", "PreviewAny", "LoadImage", "ImageToMask", "MaskToImage", "ImageScale"):
        assert info[name]["name"] == name
    for name in ("CheckpointLoaderSimple", "CLIPTextEncode", "EmptyLatentImage", "KSampler", "VAEDecode"):
        assert set(info[name]) >= {"input", "input_order", "output", "output_name", "category", "output_node"}


def test_body_less_endpoints_answer_empty_200(sim: SimulatorServer) -> None:
    for path, body in (("/queue", {"clear": True}), ("/history", {"clear": True}), ("/free", {})):
        response = requests.post(f"{sim.url}{path}", data=json.dumps(body), timeout=10)
        assert (response.status_code, response.content) == (200, b""), path
    response = requests.post(f"{sim.url}/interrupt", timeout=10)
    assert (response.status_code, response.content) == (200, b"")


@pytest.mark.parametrize("scenario", ["sampler_previews_ff", "sampler_previews"])
def test_a_sampler_sends_previews_as_comfyui_does_with_a_preview_method(
    scenario: str, tmp_path: Path
) -> None:
    """Recorded with --preview-method latent2rgb: a 512 px JPEG per step, event 4 before its progress
    frame when the client sent feature flags, event 1 after it otherwise."""
    records = load_transcript(scenario)
    with_flags = scenario.endswith("_ff")
    request = copy.deepcopy(http_records(records, "POST", "/prompt")[0]["req"])
    # The recording ran a tiny random-weight checkpoint; the simulator knows its own names only.
    request["prompt"]["1"]["inputs"]["ckpt_name"] = "v1-5-pruned-emaonly.safetensors"
    with SimulatorServer(data_dir=tmp_path / "comfy", step_delay=0.01, preview_method="latent2rgb") as sim:
        main = RecordingSocket(sim.ws_url, new_id(), with_flags)
        try:
            main.wait_count(2 if with_flags else 1)
            start = len(main.frames)
            if not with_flags:
                # The plain run was recorded second, with the loader and encoders cached by the first.
                first = copy.deepcopy(request)
                first["prompt"]["5"]["inputs"]["seed"] = 42
                first_id = submit(sim, first, main_id(main)).json()["prompt_id"]
                start = main.wait_done(first_id) + 1
            prompt_id = submit(sim, request, main_id(main)).json()["prompt_id"]
            main.wait_done(prompt_id, start)
        finally:
            main.close()

    def prompt_frames(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [f for f in frames if f["kind"] == "binary" or f["type"] not in ("status", "feature_flags")]

    assert shapes(prompt_frames(main.frames[start:])) == shapes(
        prompt_frames(transcript_frames(records, "main"))
    )
    got = prompt_frames(main.frames[start:])
    previews = [f for f in got if f["kind"] == "binary"]
    assert len(previews) == 4
    for frame in previews:
        assert Image.open(io.BytesIO(frame["payload"])).size == (512, 512)
        assert Image.open(io.BytesIO(frame["payload"])).format == "JPEG"


def main_id(sock: RecordingSocket) -> str:
    """The client id the socket connected with (the server echoes it as ``sid``)."""
    return str(sock.frames[0]["data"]["sid"])
