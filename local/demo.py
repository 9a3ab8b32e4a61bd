"""The main job, end to end on the local stack: submit the example, wait, download, summarise."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from local.processes import ROOT
from local.settings import LocalStackSettings
from local.stack import LocalStack
from local.watch import watch_job

EXAMPLE = ROOT / "examples" / "txt2img.json"
OUT_DIR = ROOT / "out"


def download_outputs(job: dict[str, Any], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    saved = []
    for output in job["outputs"]:
        response = requests.get(output["url"], timeout=30)
        response.raise_for_status()
        path = out_dir / output["filename"]
        path.write_bytes(response.content)
        saved.append(path)
    return saved


def demo(settings: LocalStackSettings) -> int:
    if "port" not in settings.model_fields_set:
        settings = settings.model_copy(update={"port": 0})
    started = time.monotonic()
    with LocalStack(settings) as stack:
        ready = time.monotonic()
        print(
            f"local stack up in {ready - started:.1f} s: REST {stack.rest_url}, ComfyUI {stack.comfyui_url}"
        )
        session = requests.Session()
        session.headers["x-api-key"] = stack.api_keys[0]
        workflow = json.loads(EXAMPLE.read_text())
        submitted = time.monotonic()
        receipt = session.post(
            f"{stack.rest_url}/v1/jobs",
            json={"workflow": workflow, "metadata": {"source": "make demo"}},
            headers={"Idempotency-Key": str(uuid.uuid4())},
            timeout=10,
        )
        if receipt.status_code != 202:
            print(f"submit failed: {receipt.status_code} {receipt.text}")
            return 1
        job_url = stack.rest_url + receipt.headers["Location"]
        print(f"submitted job {receipt.json()['job_id']} ({(time.monotonic() - submitted) * 1000:.0f} ms)")
        watch_job(session, stack.rest_url, receipt.json()["job_id"], timeout=120)
        job = session.get(job_url, timeout=10).json()
        finished = time.monotonic()
        if job["status"] != "succeeded":
            print(f"job ended {job['status']}: {json.dumps(job.get('error'), indent=2)}")
            return 1
        saved = download_outputs(job, OUT_DIR)
    print("\noutputs:")
    for path in saved:
        print(f"  {path.relative_to(ROOT)}  ({path.stat().st_size} bytes)")
    print(
        f"\ntiming: stack start {ready - started:.1f} s, submit to succeeded {finished - submitted:.2f} s, "
        f"total {time.monotonic() - started:.1f} s"
    )
    return 0
