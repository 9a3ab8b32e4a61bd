"""The runner's model cache against the library in moto: fetch, verify, share, evict."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from gpu_runner.job_models import ModelRejected, make_models_local
from gpu_runner.model_cache import STATE_DIR, ModelCache, ModelCorrupt, ModelNotFound
from shared.aws.clients import AwsClients
from shared.aws.models import ModelLibrary, ModelMismatch, ModelObject
from shared.errors import ServiceUnavailable
from shared.file_inputs import FileInputCatalog
from shared.model_refs import ModelRef

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]
PART = 64 * 1024


class CountingLibrary(ModelLibrary):
    """The real library, counting the ranged GETs that reach S3."""

    ranges = 0

    def read_range(self, model: ModelObject, start: int, end: int) -> bytes:
        type(self).ranges += 1
        return super().read_range(model, start, end)


@pytest.fixture
def library() -> Iterator[CountingLibrary]:
    """A bucket in moto and nothing else: the cache needs no table or queue."""
    with mock_aws():
        s3 = AwsClients().s3
        s3.create_bucket(Bucket="models-bucket")
        CountingLibrary.ranges = 0
        yield CountingLibrary(s3, "models-bucket", "models/")


def model_file(tmp_path: Path, name: str, size: int, seed: int) -> Path:
    path = tmp_path / "upload" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(hashlib.sha256(str(seed).encode()).digest() * (size // 32) + b"x" * (size % 32))
    return path


def cache_at(root: Path, library: ModelLibrary, budget: int = 10**9) -> ModelCache:
    return ModelCache(root, budget, library, part_bytes=PART, threads=4)


def test_a_model_is_fetched_in_parts_verified_and_then_served_from_disk(tmp_path: Path, library: Any) -> None:
    source = model_file(tmp_path, "base.safetensors", 5 * PART + 123, 1)
    stored = library.upload(ModelRef("checkpoints", "sub/base.safetensors"), source)
    assert stored.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    cache = cache_at(tmp_path / "cache", library)

    first = cache.acquire(ModelRef("checkpoints", "sub/base.safetensors"))
    assert first.fetched and library.ranges == 6
    assert first.path == tmp_path / "cache" / "checkpoints" / "sub" / "base.safetensors"
    assert first.path.read_bytes() == source.read_bytes()
    first.release()
    again = cache.acquire(ModelRef("checkpoints", "sub/base.safetensors"))
    assert not again.fetched and library.ranges == 6  # no GET at all
    again.release()
    assert list((tmp_path / "cache" / STATE_DIR / "tmp").iterdir()) == []


def test_the_same_name_is_never_stored_with_other_bytes(tmp_path: Path, library: Any) -> None:
    ref = ModelRef("loras", "style.safetensors")
    library.upload(ref, model_file(tmp_path, "a", 100, 1))
    assert library.upload(ref, model_file(tmp_path, "a", 100, 1)).size == 100  # the same again: fine
    with pytest.raises(ModelMismatch, match="already holds another model"):
        library.upload(ref, model_file(tmp_path, "b", 100, 2))


def test_two_runners_sharing_a_cache_fetch_a_model_once(tmp_path: Path, library: Any) -> None:
    ref = ModelRef("checkpoints", "shared.safetensors")
    library.upload(ref, model_file(tmp_path, "shared", 8 * PART, 3))
    runners = [cache_at(tmp_path / "cache", library), cache_at(tmp_path / "cache", library)]
    results: list[Any] = []
    barrier = threading.Barrier(2)

    def take(cache: ModelCache) -> None:
        barrier.wait()
        results.append(cache.acquire(ref))

    threads = [threading.Thread(target=take, args=(cache,)) for cache in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(result.fetched for result in results) == [False, True]
    assert library.ranges == 8
    for result in results:
        result.release()


def test_bytes_that_do_not_match_the_recorded_hash_never_land_under_the_name(
    tmp_path: Path, library: Any
) -> None:
    library._s3.put_object(
        Bucket=library.bucket,
        Key="models/vae/bad.safetensors",
        Body=b"x" * 1000,
        Metadata={"sha256": "0" * 64},
    )
    cache = cache_at(tmp_path / "cache", library)
    with pytest.raises(ModelCorrupt, match=r"vae/bad\.safetensors"):
        cache.acquire(ModelRef("vae", "bad.safetensors"))
    assert not (tmp_path / "cache" / "vae" / "bad.safetensors").exists()
    assert list((tmp_path / "cache" / STATE_DIR / "tmp").iterdir()) == []
    with pytest.raises(ModelNotFound):
        cache.acquire(ModelRef("vae", "absent.safetensors"))


def test_eviction_takes_the_least_recently_used_model_no_job_holds(tmp_path: Path, library: Any) -> None:
    refs = [ModelRef("loras", f"{n}.safetensors") for n in "abc"]
    for seed, ref in enumerate(refs):
        library.upload(ref, model_file(tmp_path, ref.name, 1000, seed))
    cache = cache_at(tmp_path / "cache", library, budget=2500)
    held = cache.acquire(refs[0])  # oldest, but a queued prompt needs it
    cache.acquire(refs[1]).release()
    os.utime(cache._lock_path(refs[1], "use"), (1, 1))  # b last used long ago; a held, also old
    os.utime(cache._lock_path(refs[0], "use"), (0, 0))
    cache.acquire(refs[2]).release()
    on_disk = {ref.name for ref, _, _ in cache.cached()}
    assert on_disk == {"a.safetensors", "c.safetensors"} and cache.size() <= 2500
    held.release()


def test_a_model_another_process_holds_is_not_evicted(tmp_path: Path, library: Any) -> None:
    ref = ModelRef("checkpoints", "busy.safetensors")
    library.upload(ref, model_file(tmp_path, "busy", 1000, 7))
    cache = cache_at(tmp_path / "cache", library, budget=1000)
    cache.acquire(ref).release()
    lock = cache._lock_path(ref, "use")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR); fcntl.flock(fd, fcntl.LOCK_SH);"
            "print('held', flush=True); sys.stdin.read()",
            str(lock),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        assert cache.make_room(1000) == []
        assert cache.path_of(ref).exists()
    finally:
        holder.communicate(b"")
    assert cache.make_room(1000) == [ref]
    assert not cache.path_of(ref).exists()


def test_a_dead_runners_partial_download_is_removed_but_a_live_one_is_not(
    tmp_path: Path, library: Any
) -> None:
    cache_at(tmp_path / "cache", library)
    partials = tmp_path / "cache" / STATE_DIR / "tmp"
    (partials / "dead.part").write_bytes(b"half")
    live = os.open(partials / "live.part", os.O_CREAT | os.O_RDWR)
    import fcntl

    fcntl.flock(live, fcntl.LOCK_EX)
    try:
        cache_at(tmp_path / "cache", library)
        assert sorted(p.name for p in partials.iterdir()) == ["live.part"]
    finally:
        os.close(live)


class ReplacedMidFetch(CountingLibrary):
    """S3's answer when the object changed since the HEAD: 412 on the ETag-pinned range."""

    def read_range(self, model: ModelObject, start: int, end: int) -> bytes:
        raise ClientError(
            {"Error": {"Code": "PreconditionFailed", "Message": "At least one failed"}}, "GetObject"
        )


def test_a_transient_fetch_failure_releases_and_a_missing_model_is_named_for_the_job(
    tmp_path: Path, library: Any
) -> None:
    ref = ModelRef("checkpoints", "moving.safetensors")
    library.upload(ref, model_file(tmp_path, "moving", 3 * PART, 9))
    flaky = ReplacedMidFetch(library._s3, library.bucket, "models/")
    with pytest.raises(ServiceUnavailable):
        cache_at(tmp_path / "cache", flaky).acquire(ref)
    assert not (tmp_path / "cache" / "checkpoints" / "moving.safetensors").exists()
    retried = cache_at(tmp_path / "cache", library).acquire(ref)
    assert retried.fetched  # the next try fetches it
    retried.release()

    catalog = FileInputCatalog(model_inputs={"CheckpointLoaderSimple": {"ckpt_name": "checkpoints"}})
    graph = {
        "7": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "moving.safetensors"}},
        "8": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "absent.safetensors"}},
    }
    cache = cache_at(tmp_path / "cache", library)
    with pytest.raises(ModelRejected, match="node 8") as rejected:
        asyncio.run(make_models_local(cache, graph, catalog))
    assert rejected.value.node_id == "8" and "checkpoints/absent.safetensors" in str(rejected.value)
    # What the failed job held is let go: the model it did get can be evicted again.
    assert cache.make_room(10**9 * 2) == [ref]


def test_the_platform_command_uploads_with_the_hash_and_refuses_a_taken_name(
    tmp_path: Path, library: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from admin.__main__ import main

    where = ["models", "--region", "us-east-1", "--location", "s3://models-bucket/models/"]
    source = model_file(tmp_path, "ink.safetensors", 2000, 11)
    assert main([*where, "upload", "loras", str(source), "--name", "styles/ink.safetensors"]) == 0
    stored = json.loads(capsys.readouterr().out)
    assert stored["key"] == "models/loras/styles/ink.safetensors"
    assert stored["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert main([*where, "list", "--folder", "loras"]) == 0
    assert [m["name"] for m in json.loads(capsys.readouterr().out)] == ["styles/ink.safetensors"]
    other = model_file(tmp_path, "other.safetensors", 2000, 12)
    assert main([*where, "upload", "loras", str(other), "--name", "styles/ink.safetensors"]) == 2
    assert "already holds another model" in capsys.readouterr().err
    assert main([*where, "upload", "loras", str(other), "--name", "../escape.safetensors"]) == 2
