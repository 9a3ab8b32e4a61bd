"""The runner's model cache: models from the S3 library on local disk, where ComfyUI reads them.

``<root>/<folder>/<name>`` is what ComfyUI sees (the root is one of its ``extra_model_paths``); the
cache's own state lives in ``<root>/.comfy-api/``. Every runner on an instance shares one root, so all
coordination is through ``flock`` on files there, which other processes (and other containers with the
same volume) honour, and which the kernel drops when a process dies:

- ``locks/<folder>/<name>.use``: held shared by every job that needs the model, from before it is
  fetched until the job ends; its mtime is the model's last use. Eviction takes it exclusive without
  waiting, so a model a queued or running prompt needs is never evicted.
- ``locks/<folder>/<name>.fetch``: held exclusive while one process downloads the model; the others
  wait, then find the file.
- ``evict.lock``: one process at a time counts the cache and evicts.
- ``tmp/``: downloads in progress, each locked by its writer; renamed into place only once complete and
  verified, so ComfyUI never sees a half file under a model's name.

Lock files are never removed: a process waiting on one must lock the same inode the next one opens.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from gpu_runner.log import logger
from shared.aws.clients import AwsClients
from shared.aws.models import HASH_CHUNK_BYTES, ModelLibrary, ModelObject
from shared.errors import ServiceUnavailable
from shared.model_refs import ModelRef, name_problem
from shared.settings import RunnerSettings

STATE_DIR = ".comfy-api"
_MISSING = {"404", "NoSuchKey", "NotFound"}
# A model whose bytes do not hash right is fetched once more before it counts as corrupt in S3.
FETCH_TRIES = 2


class ModelNotFound(Exception):
    """The library has no such model: permanent for the job that names it."""

    def __init__(self, ref: ModelRef) -> None:
        super().__init__(f"model {ref} is not in the model library")
        self.ref = ref


class ModelCorrupt(Exception):
    """The model's bytes do not match its recorded SHA-256, fetch after fetch: permanent."""

    def __init__(self, ref: ModelRef, expected: str, got: str) -> None:
        super().__init__(f"model {ref} does not match its sha256 (expected {expected}, got {got})")
        self.ref = ref


@dataclass
class CachedModel:
    """A model on local disk, kept from eviction until ``release``."""

    ref: ModelRef
    path: Path
    size: int
    fetched: bool
    _use: int | None = field(default=None, repr=False)

    def release(self) -> None:
        if self._use is not None:
            os.close(self._use)  # closing drops the shared lock
            self._use = None


class ModelCache:
    def __init__(
        self,
        root: Path,
        budget_bytes: int,
        library: ModelLibrary,
        *,
        part_bytes: int = 16 * 1024 * 1024,
        threads: int = 16,
    ) -> None:
        self.root = root
        self.budget_bytes = budget_bytes
        self._library = library
        self._part_bytes = part_bytes
        self._threads = threads
        self._state = root / STATE_DIR
        (self._state / "tmp").mkdir(parents=True, exist_ok=True)
        (self._state / "locks").mkdir(parents=True, exist_ok=True)
        self._remove_abandoned_downloads()

    # -- paths -------------------------------------------------------------------------------------

    def path_of(self, ref: ModelRef) -> Path:
        if name_problem(ref.name) or name_problem(ref.folder) or "/" in ref.folder:
            raise ValueError(f"{ref} is not a model name this cache can hold")
        return self.root / ref.folder / ref.name

    def _lock_path(self, ref: ModelRef, kind: str) -> Path:
        path = self._state / "locks" / ref.folder / f"{ref.name}.{kind}"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    # -- the one entry point -----------------------------------------------------------------------

    def acquire(self, ref: ModelRef) -> CachedModel:
        """The model on local disk, fetched first if it is not; kept until ``release``. Blocking.

        Raises ModelNotFound or ModelCorrupt (permanent for the job), ServiceUnavailable (transient:
        S3 did not answer, the object changed meanwhile, the disk is full).
        """
        path = self.path_of(ref)
        use = _open_lock(self._lock_path(ref, "use"))
        try:
            fcntl.flock(use, fcntl.LOCK_SH)  # waits while another process evicts it
            os.utime(use)  # the LRU clock
            if path.is_file():
                return CachedModel(ref, path, path.stat().st_size, fetched=False, _use=use)
            with _locked(self._lock_path(ref, "fetch")):
                if path.is_file():  # another runner fetched it while this one waited
                    return CachedModel(ref, path, path.stat().st_size, fetched=False, _use=use)
                size = self._fetch(ref, path)
            return CachedModel(ref, path, size, fetched=True, _use=use)
        except BaseException:
            os.close(use)
            raise

    # -- fetching ----------------------------------------------------------------------------------

    def _fetch(self, ref: ModelRef, path: Path) -> int:
        model = self._library.describe(ref)
        if model is None:
            raise ModelNotFound(ref)
        self.make_room(model.size)
        started = time.monotonic()
        for attempt in range(1, FETCH_TRIES + 1):
            try:
                self._download(model, path)
                break
            except ModelCorrupt:
                if attempt == FETCH_TRIES:
                    raise
                logger.warning("model did not hash right; fetching it again", extra={"model": str(ref)})
        seconds = time.monotonic() - started
        logger.info(
            "model fetched",
            extra={
                "model": str(ref),
                "bytes": model.size,
                "seconds": round(seconds, 3),
                "mib_per_s": round(model.size / 1048576 / seconds, 1) if seconds > 0 else None,
            },
        )
        return model.size

    def _download(self, model: ModelObject, path: Path) -> None:
        """Parallel ranged GETs into a locked temporary file, hash checked, then renamed into place."""
        temporary = self._state / "tmp" / f"{secrets.token_hex(8)}.part"
        fd = os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # tells a starting runner this download is alive
            try:
                os.ftruncate(fd, model.size)
                self._write_parts(fd, model)
                digest = _hash_fd(fd)
                if model.sha256 is not None and digest != model.sha256:
                    raise ModelCorrupt(model.ref, model.sha256, digest)
                os.fsync(fd)
                path.parent.mkdir(parents=True, exist_ok=True)
                temporary.replace(path)
                _fsync_dir(path.parent)
            except OSError as error:
                if error.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise ServiceUnavailable(
                        f"no disk space for model {model.ref}", cause="ENOSPC"
                    ) from error
                raise
        finally:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()

    def _write_parts(self, fd: int, model: ModelObject) -> None:
        parts = [
            (start, min(start + self._part_bytes, model.size) - 1)
            for start in range(0, model.size, self._part_bytes)
        ]

        def fetch(part: tuple[int, int]) -> None:
            start, end = part
            try:
                data = self._library.read_range(model, start, end)
            except ClientError as error:
                code = str(error.response.get("Error", {}).get("Code", ""))
                if code in _MISSING:
                    raise ModelNotFound(model.ref) from error
                # 412: replaced while being read; 5xx, throttling: S3 is busy. Another try may do.
                raise ServiceUnavailable(f"model {model.ref} could not be fetched", cause=code) from error
            except BotoCoreError as error:
                raise ServiceUnavailable(
                    f"model {model.ref} could not be fetched", cause=type(error).__name__
                ) from error
            if len(data) != end - start + 1:
                raise ServiceUnavailable(f"model {model.ref}: a short read", cause="ShortRead")
            os.pwrite(fd, data, start)

        with ThreadPoolExecutor(max_workers=min(self._threads, max(1, len(parts)))) as pool:
            for done in pool.map(fetch, parts):
                del done

    # -- eviction ----------------------------------------------------------------------------------

    def cached(self) -> list[tuple[ModelRef, int, float]]:
        """(model, bytes, last use) of every model the cache holds, least recently used first."""
        found = []
        locks = self._state / "locks"
        for use in locks.rglob("*.use"):
            relative = use.relative_to(locks).as_posix()[: -len(".use")]
            folder, _, name = relative.partition("/")
            ref = ModelRef(folder, name)
            with contextlib.suppress(FileNotFoundError, ValueError):
                found.append((ref, self.path_of(ref).stat().st_size, use.stat().st_mtime))
        return sorted(found, key=lambda entry: entry[2])

    def size(self) -> int:
        return sum(size for _, size, _ in self.cached())

    def make_room(self, incoming: int) -> list[ModelRef]:
        """Evicts least recently used models until ``incoming`` more bytes fit the budget; a model some
        job holds is skipped. Returns what it evicted. Past the budget with only held models left, the
        fetch goes on (the disk, not the budget, is the hard limit)."""
        evicted = []
        with _locked(self._state / "evict.lock"):
            entries = self.cached()
            total = sum(size for _, size, _ in entries)
            for ref, size, _ in entries:
                if total + incoming <= self.budget_bytes:
                    break
                if self._evict(ref):
                    total -= size
                    evicted.append(ref)
            if total + incoming > self.budget_bytes:
                logger.warning(
                    "model cache over its budget: the rest is in use",
                    extra={"bytes": total + incoming, "budget": self.budget_bytes},
                )
        return evicted

    def _evict(self, ref: ModelRef) -> bool:
        use = _open_lock(self._lock_path(ref, "use"))
        try:
            try:
                fcntl.flock(use, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # a queued or running prompt needs it
            with contextlib.suppress(FileNotFoundError):
                self.path_of(ref).unlink()
            logger.info("model evicted", extra={"model": str(ref)})
            return True
        finally:
            os.close(use)

    def _remove_abandoned_downloads(self) -> None:
        """Partial files of a process that died mid-download; a live download holds its file's lock."""
        for partial in (self._state / "tmp").glob("*.part"):
            with contextlib.suppress(OSError):
                fd = os.open(partial, os.O_RDWR)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    partial.unlink()
                except BlockingIOError:
                    pass
                finally:
                    os.close(fd)


def model_cache_from_settings(settings: RunnerSettings, clients: AwsClients) -> ModelCache | None:
    """The cache the settings describe; None when no cache folder is set."""
    if not settings.model_cache_dir:
        return None
    library = ModelLibrary(
        clients.s3_for_transfers(settings.model_fetch_threads),
        settings.models_bucket or settings.bucket_name,
        settings.models_prefix,
    )
    return ModelCache(
        Path(settings.model_cache_dir),
        settings.model_cache_bytes,
        library,
        part_bytes=settings.model_part_bytes,
        threads=settings.model_fetch_threads,
    )


def _open_lock(path: Path) -> int:
    return os.open(path, os.O_CREAT | os.O_RDWR, 0o644)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = _open_lock(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _hash_fd(fd: int) -> str:
    digest = hashlib.sha256()
    offset = 0
    while chunk := os.pread(fd, HASH_CHUNK_BYTES, offset):
        digest.update(chunk)
        offset += len(chunk)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
