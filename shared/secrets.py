"""The HMAC secret that signs WebSocket tokens and list cursors: a literal locally, Secrets Manager in AWS.

Rotation must cost no client a 401 or an invalid cursor, so signing uses the current version and
verification accepts the current or the previous one (Secrets Manager's ``AWSCURRENT`` and
``AWSPREVIOUS`` stages). Both are cached for a few minutes per warm function; a value that verifies
against neither makes the cache refresh (at most every ``refresh_interval_s``), so a function that cached
the versions before a rotation learns the new one from the first token or cursor signed with it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from shared.errors import ServiceUnavailable

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

CURRENT_STAGE = "AWSCURRENT"
PREVIOUS_STAGE = "AWSPREVIOUS"

T = TypeVar("T")


@dataclass(frozen=True)
class SigningKeys:
    current: str
    previous: str = ""

    @property
    def accepted(self) -> tuple[str, ...]:
        """What a signature may have been made with, current first."""
        return tuple(key for key in (self.current, self.previous) if key)


class SigningSecret:
    """One process's view of the signing secret: the literal if set, else the Secrets Manager secret."""

    def __init__(
        self,
        literal: str,
        secret_arn: str,
        client: Callable[[], SecretsManagerClient] | None = None,
        *,
        max_age_s: float = 300,
        refresh_interval_s: float = 30,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._literal = literal
        self._arn = secret_arn
        self._client = client
        self._max_age_s = max_age_s
        self._refresh_interval_s = refresh_interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: SigningKeys | None = None
        self._fetched_at = 0.0

    @property
    def configured(self) -> bool:
        return bool(self._literal or self._arn)

    def keys(self) -> SigningKeys:
        """The cached versions, fetched again once ``max_age_s`` old; empty when none is configured."""
        if self._literal or not self._arn:
            return SigningKeys(self._literal)
        with self._lock:
            if self._cached is None or self._clock() - self._fetched_at >= self._max_age_s:
                self._fetch()
            assert self._cached is not None
            return self._cached

    def refreshed(self) -> SigningKeys | None:
        """Fresh versions if the cache may be stale and was not refreshed just now; None otherwise."""
        if self._literal or not self._arn:
            return None
        with self._lock:
            if self._cached is not None and self._clock() - self._fetched_at < self._refresh_interval_s:
                return None
            self._fetch()
            return self._cached

    def verify(self, check: Callable[[tuple[str, ...]], T], refused: type[Exception]) -> T:
        """``check`` with the cached versions; if it refuses, once more with fresh ones if they may differ."""
        try:
            return check(self.keys().accepted)
        except refused:
            fresh = self.refreshed()
            if fresh is None:
                raise
            return check(fresh.accepted)

    def _fetch(self) -> None:
        try:
            self._cached = self._read()
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "Unknown")
            raise ServiceUnavailable(f"the signing secret could not be read ({code})", cause=code) from error
        except BotoCoreError as error:
            cause = type(error).__name__
            raise ServiceUnavailable("the signing secret could not be read", cause=cause) from error
        self._fetched_at = self._clock()

    def _read(self) -> SigningKeys:
        assert self._client is not None, "a secret ARN needs a Secrets Manager client"
        client = self._client()
        current = client.get_secret_value(SecretId=self._arn, VersionStage=CURRENT_STAGE)
        try:
            previous = client.get_secret_value(SecretId=self._arn, VersionStage=PREVIOUS_STAGE)
        except ClientError as error:
            # A secret never rotated has no previous version.
            if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
            previous = {"SecretString": ""}
        return SigningKeys(current["SecretString"], previous["SecretString"])
