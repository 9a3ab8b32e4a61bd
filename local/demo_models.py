"""The demo's second part: a checkpoint the GPU image does not have, fetched from the model library by
the first job that names it and found in the runner's cache by the next."""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

from comfy_jobs import Client

from local.processes import ROOT
from local.stack import LocalStack, local_clients
from shared.aws.models import ModelLibrary
from shared.model_refs import ModelRef
from shared.names import S3Prefix

EXAMPLE = ROOT / "examples" / "txt2img.json"
CHECKPOINT = ModelRef("checkpoints", "comfy-api-demo-v1.safetensors")
CHECKPOINT_MIB = 64


def upload_demo_checkpoint(stack: LocalStack) -> None:
    """What `python -m admin models upload checkpoints FILE --local` does: the file and its sha256."""
    assert stack.resources is not None
    library = ModelLibrary(local_clients(stack.aws_endpoint).s3, stack.resources.bucket, S3Prefix.MODELS)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / CHECKPOINT.name
        block = hashlib.sha256(b"comfy-api demo checkpoint").digest() * (1024 * 1024 // 32)
        path.write_bytes(block * CHECKPOINT_MIB)
        stored = library.upload(CHECKPOINT, path)
    digest = (stored.sha256 or "?")[:12]
    print(f"\nuploaded {CHECKPOINT} ({CHECKPOINT_MIB} MiB, sha256 {digest}…)")


def show_model_cache(stack: LocalStack, client: Client) -> bool:
    upload_demo_checkpoint(stack)
    workflow = json.loads(EXAMPLE.read_text())
    workflow["4"]["inputs"]["ckpt_name"] = CHECKPOINT.name
    listed = [f"{m.folder}/{m.name}" for m in client.models()]
    print(f"GET /v1/models: {', '.join(listed)}")
    for attempt, what in ((1, "fetched from S3 into the runner's cache"), (2, "found in the runner's cache")):
        workflow["3"]["inputs"]["seed"] = attempt
        job = client.wait(client.submit(workflow).job_id, timeout=120)
        if job.status != "succeeded":
            print(f"job naming {CHECKPOINT.name} ended {job.status}: {job.error}")
            return False
        print(f"job {attempt} naming {CHECKPOINT.name}: models {job.timings.get('models_ms')} ms ({what})")
    return True
