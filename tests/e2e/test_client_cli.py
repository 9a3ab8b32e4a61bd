"""The ``comfy-jobs`` command line as a real subprocess against the local stack: output and exit codes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.conftest import PROTOCOL_DIR, ROOT
from tests.e2e.conftest import Stack, start_stack, stop_stack

pytestmark = pytest.mark.timeout(120)

COMFY_JOBS = str(Path(sys.executable).parent / "comfy-jobs")
WORKFLOWS = PROTOCOL_DIR / "workflows"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(
        tmp_path_factory.mktemp("cli-stack"),
        RUNNERS="1",
        SIM_STEP_DELAY="0.03",
        # Webhooks to a receiver on 127.0.0.1 (tests only), retried on a short schedule.
        WEBHOOK_ALLOW_LOCAL_HTTP="true",
        WEBHOOK_RETRY_BASE_SECONDS="0.5",
    )
    yield running
    stop_stack(running)


def cli(
    stack: Stack, *args: str, key: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "COMFY_API_URL": stack.rest_url,
        "COMFY_API_KEY": key or stack.endpoints["api_keys"][0],
    }
    return subprocess.run(
        [COMFY_JOBS, *args], env=env, cwd=cwd or ROOT, capture_output=True, text=True, timeout=90
    )


def sampler_file(tmp_path: Path, steps: int) -> Path:
    workflow = json.loads((ROOT / "examples" / "txt2img.json").read_text())
    workflow["3"]["inputs"]["steps"] = steps
    workflow["3"]["inputs"]["seed"] = time.time_ns() % 2**32
    path = tmp_path / f"sampler-{steps}.json"
    path.write_text(json.dumps(workflow))
    return path


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.stdout, result.stderr
    return json.loads(result.stdout)


def test_submit_wait_draws_progress_and_saves_the_outputs(stack: Stack, tmp_path: Path) -> None:
    result = cli(stack, "submit", str(sampler_file(tmp_path, 100)), "--wait", "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "100.0%" in result.stderr and "KSampler" in result.stderr, "the progress bar goes to stderr"
    assert "succeeded" in result.stdout and "saved" in result.stdout
    saved = list((tmp_path / "out").iterdir())
    assert len(saved) == 1 and saved[0].read_bytes().startswith(b"\x89PNG")


def test_submit_then_status_watch_and_list_as_json(stack: Stack, tmp_path: Path) -> None:
    job = as_json(
        cli(stack, "submit", str(sampler_file(tmp_path, 100)), "--json", "--metadata", '{"by": "cli"}')
    )
    assert job["status"] == "queued" and job["metadata"] == {"by": "cli"}
    watched = cli(stack, "watch", job["job_id"], "--json")
    assert watched.returncode == 0, watched.stderr
    lines = [json.loads(line) for line in watched.stdout.splitlines()]
    assert lines[0]["type"] == "job.snapshot" and any(e.get("type") == "job.progress" for e in lines)
    assert lines[-2]["type"] == "job.status" and lines[-2]["status"] == "succeeded"
    assert "type" not in lines[-1] and lines[-1]["outputs"], "then the final job"
    status = cli(stack, "status", job["job_id"])
    assert status.returncode == 0 and f"job {job['job_id']}: succeeded" in status.stdout
    listed = as_json(cli(stack, "list", "--limit", "3", "--json"))
    assert len(listed) <= 3 and job["job_id"] in [j["job_id"] for j in listed]
    human = cli(stack, "list", "--status", "succeeded")
    assert human.returncode == 0 and job["job_id"] in human.stdout


def test_watch_in_human_form(stack: Stack, tmp_path: Path) -> None:
    job = as_json(cli(stack, "submit", str(sampler_file(tmp_path, 10)), "--json"))
    watched = cli(stack, "watch", job["job_id"])
    assert watched.returncode == 0 and "succeeded" in watched.stdout
    assert "%" in watched.stderr


def test_a_template_with_params_and_an_uploaded_input(stack: Stack, tmp_path: Path) -> None:
    templates = cli(stack, "templates")
    assert templates.returncode == 0 and "txt2img" in templates.stdout and "img2img" in templates.stdout
    one = cli(stack, "templates", "img2img")
    assert one.returncode == 0 and "image" in one.stdout and "(required)" in one.stdout
    assert as_json(cli(stack, "templates", "txt2img", "--json"))["name"] == "txt2img"

    txt = cli(
        stack, "submit", "--template", "txt2img", "--param", "prompt=a red fox", "--param", "steps=3",
        "--wait", "--json", "--out", str(tmp_path / "txt"),
    )  # fmt: skip
    assert txt.returncode == 0, txt.stderr
    assert as_json(txt)["status"] == "succeeded" and as_json(txt)["files"]

    picture = tmp_path / "cat.png"
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (20, 120, 200)).save(buffer, format="PNG")
    picture.write_bytes(buffer.getvalue())
    img = cli(
        stack, "submit", "--template", "img2img", "--input", f"image={picture}", "--param", "prompt=a cat",
        "--param", "steps=2", "--wait", "--out", str(tmp_path / "img"),
    )  # fmt: skip
    assert img.returncode == 0, img.stderr
    assert list((tmp_path / "img").iterdir())


def test_cancel_then_watch_exits_3_and_a_second_cancel_exits_5(stack: Stack, tmp_path: Path) -> None:
    job = as_json(cli(stack, "submit", str(sampler_file(tmp_path, 2000)), "--json"))
    canceled = cli(stack, "cancel", job["job_id"])
    assert canceled.returncode == 0, canceled.stderr
    assert job["job_id"] in canceled.stdout
    assert cli(stack, "watch", job["job_id"], "--timeout", "60").returncode == 3
    assert cli(stack, "status", job["job_id"]).returncode == 3
    again = cli(stack, "cancel", job["job_id"])
    assert again.returncode == 5 and "409" in again.stderr


def test_a_failed_job_exits_1_with_its_error(stack: Stack) -> None:
    result = cli(stack, "submit", str(WORKFLOWS / "runtime_error_imagetomask_alpha.json"), "--wait")
    assert result.returncode == 1, result.stderr
    assert "failed" in result.stdout and "error" in result.stdout


def test_api_errors_exit_5_with_readable_messages(stack: Stack, tmp_path: Path) -> None:
    bad_key = cli(stack, "list", key="not-a-key")
    assert bad_key.returncode == 5 and "403 Forbidden" in bad_key.stderr
    unknown = cli(stack, "status", "no-such-job")
    assert unknown.returncode == 5 and "404" in unknown.stderr and "no-such-job" in unknown.stderr
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"1": {"class_type": "SaveImage", "inputs": {"images": ["9", 0]}}}))
    invalid = cli(stack, "submit", str(bad))
    assert invalid.returncode == 5 and "422" in invalid.stderr and "/workflow/1" in invalid.stderr


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["submit"],
        ["submit", "x.json", "--template", "txt2img"],
        ["submit", "--template", "txt2img", "--param", "no-equals-sign"],
        ["submit", "no-such-file.json"],
        ["list", "--status", "sleeping"],
    ],
)
def test_usage_errors_exit_2(stack: Stack, args: list[str]) -> None:
    assert cli(stack, *args).returncode == 2


def test_help_documents_the_exit_codes(stack: Stack) -> None:
    result = cli(stack, "--help")
    assert result.returncode == 0
    for line in (
        "0  succeeded",
        "1  the job failed",
        "2  usage error",
        "3  the job was canceled",
        "5  API error",
    ):
        assert line in result.stdout


def test_a_ui_format_file_gets_the_apis_explanation_not_a_traceback(stack: Stack, tmp_path: Path) -> None:
    ui = tmp_path / "saved-from-the-editor.json"
    ui.write_text(json.dumps({"last_node_id": 3, "nodes": [{"id": 3, "type": "KSampler"}], "links": []}))
    image = tmp_path / "in.png"
    Image.new("RGB", (4, 4)).save(image)
    for args in ([], ["--input", f"image={image}"]):
        result = cli(stack, "submit", str(ui), *args)
        assert "Traceback" not in result.stderr, result.stderr
        assert result.returncode in (2, 5) and "Export (API)" in result.stderr, result.stderr


def test_a_timed_out_wait_exits_6_with_its_message_on_a_line_of_its_own(stack: Stack, tmp_path: Path) -> None:
    result = cli(stack, "submit", str(sampler_file(tmp_path, steps=400)), "--wait", "--timeout", "1")
    assert result.returncode == 6, result.stderr
    assert "\ncomfy-jobs: job " in result.stderr and "did not finish within 1 s" in result.stderr
    job_id = result.stderr.split("comfy-jobs: job ")[1].split()[0]
    cli(stack, "cancel", job_id)


def test_webhooks_from_the_command_line_reach_a_receiver_signed_and_can_be_redelivered(stack: Stack) -> None:
    from local.webhook_receiver import WebhookReceiver

    receiver = WebhookReceiver().start()
    try:
        created = as_json(cli(stack, "webhooks", "create", receiver.url("/hook"), "--json"))
        receiver.secrets["/hook"] = created["secret"]
        receiver.secrets["/job"] = as_json(cli(stack, "webhooks", "job-secret", "--json"))["secret"]
        submitted = cli(
            stack,
            "submit",
            str(WORKFLOWS / "simple_invert_save.json"),
            "--webhook",
            receiver.url("/job"),
            "--json",
        )
        job_id = as_json(submitted)["job_id"]
        deadline = time.monotonic() + 30
        while len(receiver.events(job_id=job_id)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        # The endpoint and the job's own webhook each heard the outcome once, signed (verified by the
        # standardwebhooks package in the receiver), with the same event id. (The endpoint also hears
        # the tenant's other jobs, those of earlier tests on this stack.)
        hook, own = receiver.events("/hook", job_id=job_id), receiver.events("/job", job_id=job_id)
        assert [t for _, t in hook] == ["job.succeeded"] and [t for _, t in own] == ["job.succeeded"]
        assert hook[0][0] == own[0][0]
        assert all(r.verified for r in receiver.received)

        deliveries = as_json(cli(stack, "webhooks", "deliveries", job_id, "--json"))
        assert {d["delivery_id"]: d["status"] for d in deliveries} == {
            f"job.succeeded@{created['webhook_id']}": "delivered",
            "job.succeeded@job": "delivered",
        }
        redelivered = cli(stack, "webhooks", "redeliver", job_id, "job.succeeded@job")
        assert redelivered.returncode == 0, redelivered.stderr
        while len(receiver.events("/job", job_id=job_id)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        first, second = receiver.events("/job", job_id=job_id)
        assert first == second, "a redelivery is the same event (same webhook-id)"

        listed = cli(stack, "webhooks", "list")
        assert created["webhook_id"] in listed.stdout and "enabled" in listed.stdout
        assert cli(stack, "webhooks", "delete", created["webhook_id"]).returncode == 0
        missing = cli(stack, "webhooks", "delete", created["webhook_id"])
        assert missing.returncode == 5 and "webhook" in missing.stderr.lower()
    finally:
        receiver.stop()
