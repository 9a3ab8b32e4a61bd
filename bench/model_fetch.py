"""Model fetch: the runner cache's parallel ranged download beside a plain boto3 download of the same
object from the same moto, and what a job's models cost when they are, and are not, in the cache."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness import RUNNER_APP_ID, Bench
from gpu_runner.model_cache import ModelCache
from local.processes import ROOT
from shared.aws.models import ModelLibrary
from shared.model_refs import ModelRef

MODEL = ModelRef("checkpoints", "bench-model.safetensors")
PART_BYTES = 8 * 1024 * 1024
THREADS = 16
MIB = 1024 * 1024


def run(bench: Bench, model_mib: int) -> dict[str, Any]:
    s3 = bench.boto("s3")
    library = ModelLibrary(s3, bench.resources.bucket, "models/")
    with tempfile.TemporaryDirectory(prefix="bench-models-") as directory:
        work = Path(directory)
        source = work / MODEL.name
        with source.open("wb") as handle:
            for _ in range(model_mib):
                handle.write(os.urandom(MIB))
        library.upload(MODEL, source)
        size = source.stat().st_size

        started = time.perf_counter()
        body = s3.get_object(Bucket=bench.resources.bucket, Key=library.key(MODEL))["Body"]
        with (work / "plain").open("wb") as handle:
            for chunk in body.iter_chunks(MIB):
                handle.write(chunk)
        plain_s = time.perf_counter() - started

        started = time.perf_counter()
        s3.download_file(bench.resources.bucket, library.key(MODEL), str(work / "managed"))
        managed_s = time.perf_counter() - started

        # A client whose connection pool fits the parallel parts, as the runner makes its own.
        wide = ModelLibrary(bench.boto("s3", pool=THREADS), bench.resources.bucket, "models/")
        cache = ModelCache(work / "cache", 10 * size, wide, part_bytes=PART_BYTES, threads=THREADS)
        started = time.perf_counter()
        cache.acquire(MODEL).release()  # ranged parts in parallel, then the whole file hashed
        cache_s = time.perf_counter() - started

        # The same path in one part: what the cache itself costs (write, hash, rename) beside moto's
        # price for each ranged GET (it copies the whole object to serve a range).
        whole = ModelCache(work / "whole", 10 * size, wide, part_bytes=size, threads=1)
        started = time.perf_counter()
        whole.acquire(MODEL).release()
        one_part_s = time.perf_counter() - started

    jobs = _jobs_with_the_model(bench)

    def mib_s(seconds: float) -> float:
        return round(size / MIB / seconds, 1)

    return {
        "model_mib": model_mib,
        "plain_boto3_get_object_mib_s": mib_s(plain_s),
        "boto3_download_file_mib_s": mib_s(managed_s),
        "cache_fetch_mib_s": mib_s(cache_s),
        "cache_fetch_one_part_mib_s": mib_s(one_part_s),
        "cache_fetch_includes": f"{PART_BYTES // MIB} MiB parts, {THREADS} at a time, then a SHA-256 check",
        "jobs": jobs,
    }


def _jobs_with_the_model(bench: Bench) -> list[dict[str, Any]]:
    """Two jobs naming the model, one after the other, on a runner whose cache starts empty."""
    workflow = json.loads((ROOT / "examples" / "txt2img.json").read_text())
    workflow["4"]["inputs"]["ckpt_name"] = MODEL.name
    workflow["3"]["inputs"]["steps"] = 2
    bench.ensure_runner()
    session = bench.client()
    jobs = []
    for index in range(2):
        workflow["3"]["inputs"]["seed"] = index
        mark = bench.calls.mark()
        job_id = bench.submit(session, workflow)
        bench.wait_terminal(session, [job_id], timeout=300)
        job = session.get(f"{bench.rest_url}/v1/jobs/{job_id}", timeout=10).json()
        reads = [
            call
            for call in bench.calls.since(mark)
            if call.caller == RUNNER_APP_ID
            and call.service == "s3"
            and call.operation in ("GetObject", "HeadObject")
        ]
        jobs.append(
            {
                "job": index + 1,
                "status": job["status"],
                "models_ms": (job.get("timings") or {}).get("models_ms"),
                "runner_s3_reads": len(reads),
            }
        )
    return jobs
