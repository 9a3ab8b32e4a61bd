"""The main job, end to end on the local stack, as a user would run it: with the ``comfy_jobs`` client."""

from __future__ import annotations

import json
import sys
import time

from comfy_jobs import Client, ComfyJobsError, ProgressBar

from local.demo_models import show_model_cache
from local.processes import ROOT
from local.settings import LocalStackSettings
from local.stack import LocalStack

EXAMPLE = ROOT / "examples" / "txt2img.json"
OUT_DIR = ROOT / "out"


def demo(settings: LocalStackSettings) -> int:
    if "port" not in settings.model_fields_set:
        settings = settings.model_copy(update={"port": 0})
    started = time.monotonic()
    with LocalStack(settings) as stack:
        ready = time.monotonic()
        print(
            f"local stack up in {ready - started:.1f} s: REST {stack.rest_url}, ComfyUI {stack.comfyui_url}"
        )
        client = Client(stack.rest_url, stack.api_keys[0], timeout=10)
        workflow = json.loads(EXAMPLE.read_text())
        submitted = time.monotonic()
        try:
            job = client.submit(workflow, metadata={"source": "make demo"})
            print(f"submitted job {job.job_id} ({(time.monotonic() - submitted) * 1000:.0f} ms)")
            job = client.wait(job.job_id, timeout=120, on_event=ProgressBar(sys.stdout))
            finished = time.monotonic()
            if job.status != "succeeded":
                print(f"job ended {job.status}: {job.error}")
                return 1
            saved = client.download(job, OUT_DIR)
            if not show_model_cache(stack, client):
                return 1
        except ComfyJobsError as exc:
            print(f"the demo job did not run: {exc}")
            return 1
    print("\noutputs:")
    for path in saved:
        print(f"  {path.relative_to(ROOT)}  ({path.stat().st_size} bytes)")
    print(
        f"\ntiming: stack start {ready - started:.1f} s, submit to succeeded {finished - submitted:.2f} s, "
        f"total {time.monotonic() - started:.1f} s"
    )
    return 0
