"""The model library in S3: ``<prefix><folder>/<name>``, laid out as ComfyUI's model folders.

A model's SHA-256 travels as the object's ``sha256`` metadata (the upload command sets it); a model
copied there some other way has none, and is then checked by size only. A name is never reused for other
bytes: the upload command refuses to overwrite a model with a different hash, so a runner's cached copy
of a name stays right.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from shared.errors import ServiceUnavailable
from shared.model_refs import ModelRef, name_problem

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SHA256_METADATA = "sha256"
_MISSING = {"404", "NoSuchKey", "NotFound"}
_HEAD_THREADS = 8
HASH_CHUNK_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class ModelObject:
    ref: ModelRef
    size: int
    etag: str
    sha256: str | None
    updated_ms: int


class ModelMismatch(Exception):
    """An upload under a name that already holds a different model."""


def normalize_prefix(prefix: str) -> str:
    """'' (the bucket's root) or a prefix ending in '/'."""
    prefix = prefix.strip("/")
    return f"{prefix}/" if prefix else ""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class ModelLibrary:
    def __init__(self, client: S3Client, bucket: str, prefix: str) -> None:
        self._s3 = client
        self.bucket = bucket
        self.prefix = normalize_prefix(prefix)

    def key(self, ref: ModelRef) -> str:
        return f"{self.prefix}{ref.folder}/{ref.name}"

    def ref_of(self, key: str) -> ModelRef | None:
        """The model a key holds; None for a key that is not ``<folder>/<name>`` under the prefix."""
        if not key.startswith(self.prefix):
            return None
        folder, _, name = key[len(self.prefix) :].partition("/")
        if not folder or name_problem(name):
            return None
        return ModelRef(folder, name)

    # -- reading -------------------------------------------------------------------------------------

    def page(
        self, limit: int, after: ModelRef | None = None, folder: str | None = None
    ) -> tuple[list[ModelObject], ModelRef | None]:
        """Up to ``limit`` models in key order after ``after``, and where the next page starts (None
        at the end)."""
        request: dict[str, Any] = {
            "Bucket": self.bucket,
            "Prefix": f"{self.prefix}{folder}/" if folder else self.prefix,
            "MaxKeys": limit,
        }
        if after is not None:
            request["StartAfter"] = self.key(after)
        try:
            response = self._s3.list_objects_v2(**request)
        except (ClientError, BotoCoreError) as error:
            raise ServiceUnavailable(
                "the model library could not be listed", cause=type(error).__name__
            ) from error
        listed = response.get("Contents", [])
        refs = [ref for item in listed if (ref := self.ref_of(item["Key"])) is not None]
        with ThreadPoolExecutor(max_workers=_HEAD_THREADS) as pool:
            described = [found for found in pool.map(self.describe, refs) if found is not None]
        last = self.ref_of(listed[-1]["Key"]) if listed else None
        return described, last if response.get("IsTruncated") else None

    def names_in(self, folder: str) -> set[str]:
        """Every model name in one folder."""
        return {ref.name for ref in self._refs(f"{self.prefix}{folder}/")}

    def _refs(self, prefix: str) -> Iterator[ModelRef]:
        paginator = self._s3.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    ref = self.ref_of(item["Key"])
                    if ref is not None:
                        yield ref
        except (ClientError, BotoCoreError) as error:
            raise ServiceUnavailable(
                "the model library could not be listed", cause=type(error).__name__
            ) from error

    def describe(self, ref: ModelRef) -> ModelObject | None:
        """Size, ETag and hash of one model; None when there is no such model."""
        try:
            head = self._s3.head_object(Bucket=self.bucket, Key=self.key(ref))
        except ClientError as error:
            if _code(error) in _MISSING:
                return None
            raise ServiceUnavailable(f"model {ref} could not be read", cause=_code(error)) from error
        except BotoCoreError as error:
            raise ServiceUnavailable(f"model {ref} could not be read", cause=type(error).__name__) from error
        sha256 = (head.get("Metadata") or {}).get(SHA256_METADATA)
        return ModelObject(
            ref=ref,
            size=int(head["ContentLength"]),
            etag=str(head["ETag"]),
            sha256=sha256.lower() if sha256 else None,
            updated_ms=int(head["LastModified"].timestamp() * 1000),
        )

    def read_range(self, model: ModelObject, start: int, end: int) -> bytes:
        """Bytes ``start``..``end`` (inclusive) of exactly the object ``describe`` saw: a model replaced
        meanwhile answers 412 rather than mixing two versions."""
        response = self._s3.get_object(
            Bucket=self.bucket, Key=self.key(model.ref), Range=f"bytes={start}-{end}", IfMatch=model.etag
        )
        return response["Body"].read()

    # -- writing (the platform team's command) -----------------------------------------------------

    def upload(self, ref: ModelRef, path: Path, *, replace: bool = False) -> ModelObject:
        """Stores ``path`` as ``ref`` with its SHA-256. The same bytes again change nothing; other bytes
        under a taken name are refused unless ``replace`` (runners keep the copy they cached)."""
        problem = name_problem(ref.name)
        if problem or name_problem(ref.folder) or "/" in ref.folder:
            raise ValueError(problem or f"{ref.folder!r} is not a folder name")
        sha256 = file_sha256(path)
        current = self.describe(ref)
        if current is not None and current.sha256 == sha256 and current.size == path.stat().st_size:
            return current
        if current is not None and not replace:
            raise ModelMismatch(
                f"{ref} already holds another model (sha256 {current.sha256 or 'unknown'}); "
                "upload it under a new name (cached copies of the old one are not refreshed)"
            )
        self._s3.upload_file(
            str(path),
            self.bucket,
            self.key(ref),
            ExtraArgs={"Metadata": {SHA256_METADATA: sha256}, "ContentType": "application/octet-stream"},
        )
        stored = self.describe(ref)
        assert stored is not None, "an object just written can be read"
        return stored


class CachedModelNames:
    """The library's names per folder as a warm function sees them: each folder listed at most once per
    ``ttl_seconds``; a name missing from the listing is looked up before it counts as missing, so a
    model uploaded a moment ago is found at once."""

    def __init__(
        self, library: ModelLibrary, ttl_seconds: float, clock: Callable[[], float] = time.monotonic
    ):
        self._library = library
        self._ttl = ttl_seconds
        self._clock = clock
        self._listed: dict[str, tuple[float, set[str]]] = {}

    def names_in(self, folder: str) -> set[str]:
        now = self._clock()
        listed = self._listed.get(folder)
        if listed is None or now - listed[0] >= self._ttl:
            listed = (now, self._library.names_in(folder))
            self._listed[folder] = listed
        return listed[1]

    def has(self, ref: ModelRef) -> bool:
        if ref.name in self.names_in(ref.folder):
            return True
        if self._library.describe(ref) is None:
            return False
        self._listed.pop(ref.folder, None)  # listed again next time
        return True
