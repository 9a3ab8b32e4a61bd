"""Idempotency-Key without a record of its own: the key names the job it made.

An owner's key and a generation (0, 1, 2, ...) give a job id (:func:`keyed_job_id`); the job made
under it stores the request's fingerprint and when the key lapses (``idempotency_ttl_seconds``
after). A submission with a key reads the key's generations in order, strongly:

- a job whose key has not lapsed is the key's answer: the same fingerprint replays it, another is
  refused (:class:`KeyHolder`);
- a job whose key lapsed is passed over: the key, reused, makes its next generation;
- no job: the key is free at this generation, and the new job takes the id (a conditional put, so
  of two requests racing for it one wins and the other reads the winner).

So no key makes two jobs while it lives, and a new key costs one read of a missing item. A
generation passed over is kept at least as long as the new key lives: were it deleted (the jobs
table's TTL) while a later generation's key still lived, the walk would stop at the gap and make a
second job.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from shared.aws.jobs import JobStore
from shared.models import Job


def request_fingerprint(method: str, path: str, body: dict[str, Any]) -> str:
    """Equal for the same request whatever its JSON key order or spacing: its SHA-256 in base64url (43
    characters, where hex takes 64: it is on every write of the job item)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(f"{method} {path}\n{canonical}".encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def keyed_job_id(owner: str, key: str, generation: int) -> str:
    """The id of the job an owner's key makes in its ``generation``: a UUIDv8 of their SHA-256.

    Scoped by owner like the key itself: another tenant's same key names another job."""
    digest = bytearray(hashlib.sha256(json.dumps([owner, key, generation]).encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x80  # version 8: custom
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 9562 variant
    return str(uuid.UUID(bytes=bytes(digest)))


@dataclass(frozen=True)
class KeyHolder:
    """The job a live key made: the answer to every request that comes with the key."""

    job: Job


@dataclass(frozen=True)
class FreeKey:
    """The key makes no live job: a new one takes ``job_id`` (its next generation)."""

    job_id: str


class IdempotencyKeys:
    def __init__(self, store: JobStore, ttl_seconds: int) -> None:
        self._store = store
        self.ttl_seconds = ttl_seconds

    def find(self, owner: str, key: str, now_s: int) -> KeyHolder | FreeKey:
        """The key's live job, or the id its next job takes."""
        keep_until = now_s + self.ttl_seconds
        generation = 0
        while True:
            job_id = keyed_job_id(owner, key, generation)
            job = self._store.get(job_id)
            if job is None:
                return FreeKey(job_id)
            if job.key_expires_at is not None and job.key_expires_at >= now_s:
                return KeyHolder(job)
            # Lapsed: passed over, and kept while a later generation's key may live; gone meanwhile, its
            # id is free again (no later generation's key lives, or this one would have been kept).
            if (job.expires_at is None or job.expires_at < keep_until) and not self._store.keep_until(
                job_id, keep_until
            ):
                return FreeKey(job_id)
            generation += 1

    def holder(self, job_id: str) -> KeyHolder | None:
        """After a lost race for ``job_id``: the job that won it."""
        job = self._store.get(job_id)
        return KeyHolder(job) if job is not None else None


def as_first_given(job: Job) -> Job:
    """The job as it was when it was created, whatever happened to it since: what a replay answers."""
    return Job(
        job_id=job.job_id,
        owner=job.owner,
        created_at=job.created_at,
        updated_at=job.created_at,
        deadline=job.deadline,
        metadata=job.metadata,
        template=job.template,
        params=job.params,
        pool=job.pool,
        lane=job.lane,
        webhook=job.webhook,
    )
