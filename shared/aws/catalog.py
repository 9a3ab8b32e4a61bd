"""The runners' file-input catalog in the artifacts bucket: runners publish it, the API reads it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from shared.errors import ServiceUnavailable
from shared.file_inputs import FileInputCatalog
from shared.names import COMFYUI_CATALOG_KEY

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_MISSING = {"404", "NoSuchKey", "NotFound"}


class CatalogStore:
    def __init__(self, client: S3Client, bucket: str, key: str = COMFYUI_CATALOG_KEY) -> None:
        self._s3 = client
        self._bucket = bucket
        self._key = key

    def read(self) -> FileInputCatalog | None:
        """The published catalog; None when no runner has published one (or it cannot be read)."""
        try:
            data = self._s3.get_object(Bucket=self._bucket, Key=self._key)["Body"].read()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _MISSING:
                return None
            raise ServiceUnavailable(
                "the file-input catalog could not be read", cause="ClientError"
            ) from error
        except BotoCoreError as error:
            raise ServiceUnavailable(
                "the file-input catalog could not be read", cause=type(error).__name__
            ) from error
        try:
            return FileInputCatalog.from_json(data)
        except (ValueError, TypeError, AttributeError):
            # A newer runner's format: the runner checks again before it submits.
            return None

    def publish(self, catalog: FileInputCatalog) -> bool:
        """Stores the catalog unless the same one is there already; True when it wrote."""
        current = self.read()
        if current is not None and current.to_json() == catalog.to_json():
            return False
        self._s3.put_object(
            Bucket=self._bucket, Key=self._key, Body=catalog.to_json(), ContentType="application/json"
        )
        return True


class CachedCatalog:
    """The catalog as a warm function sees it: read again once ``ttl_seconds`` have passed.

    A missing catalog is never cached, so the first runner's publication counts at once; when the bucket
    does not answer, the last catalog read is kept (or none: the runner checks again before it submits).
    """

    def __init__(
        self, store: CatalogStore, ttl_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = store
        self._ttl = ttl_seconds
        self._clock = clock
        self._catalog: FileInputCatalog | None = None
        self._read_at = 0.0

    def get(self) -> FileInputCatalog | None:
        now = self._clock()
        if self._catalog is None or now - self._read_at >= self._ttl:
            try:
                self._catalog = self._store.read()
            except ServiceUnavailable:
                return self._catalog
            self._read_at = now
        return self._catalog
