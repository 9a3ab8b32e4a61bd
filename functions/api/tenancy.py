"""Which tenant an API key belongs to, cached in the warm function so most requests read nothing.

A key found is cached for ``ttl_s``; a key not found (or revoked) is never cached, so a key works the
moment it is issued. Revoking a key deletes it from API Gateway, which refuses it at once; the cache
only bounds how long this function would still honour a key API Gateway let through.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from shared.aws.tenants import TenantStore


class TenantDirectory:
    def __init__(self, store: TenantStore, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[str, float]] = {}

    def tenant_of(self, api_key_id: str) -> str | None:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(api_key_id)
        if cached is not None and now - cached[1] < self._ttl_s:
            return cached[0]
        key = self._store.key(api_key_id)
        if key is None or not key.active:
            with self._lock:
                self._cache.pop(api_key_id, None)
            return None
        with self._lock:
            self._cache[api_key_id] = (key.tenant_id, now)
        return key.tenant_id
