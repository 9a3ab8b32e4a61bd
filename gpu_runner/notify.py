"""Where the runner tells the world about a job: the WebSocket fan-out plugs in here."""

from __future__ import annotations

from typing import Any, Protocol

from shared.models import Job


class Guard(Protocol):
    """The attempt a frame comes from, asked just before the frame is posted."""

    async def holds(self) -> bool:
        """False when the attempt may no longer act (it lost its lease, or the job ended elsewhere)."""

    def act_before_ms(self) -> int | None:
        """The wall-clock time after which nothing may leave unverified; None: no limit."""


class Notifier(Protocol):
    async def status(self, job: Job, guard: Guard | None = None) -> None:
        """The job changed state (``job`` is the state just written, which also numbers it)."""

    async def progress(
        self,
        job: Job,
        node_id: str,
        node_type: str | None,
        value: float,
        maximum: float,
        guard: Guard | None = None,
        *,
        seq: int | None = None,
        keep: bool = False,
    ) -> None:
        """The job moved on; ``job.progress`` holds the whole job's percent. ``keep``: never coalesced away
        (a milestone in the job's event log)."""

    async def wants_previews(self, job_id: str) -> bool:
        """Whether any subscriber of the job asked for previews: nobody else pays for making them."""

    async def preview(self, job_id: str, frame: dict[str, Any], guard: Guard | None = None) -> None:
        """A ``job.preview`` frame, for the subscribers who asked for previews only."""

    async def close(self) -> None: ...


class NoSubscribers:
    """Used when no WebSocket API is configured: status still lands in DynamoDB, nothing is pushed."""

    async def status(self, job: Job, guard: Guard | None = None) -> None:
        return None

    async def progress(
        self,
        job: Job,
        node_id: str,
        node_type: str | None,
        value: float,
        maximum: float,
        guard: Guard | None = None,
        *,
        seq: int | None = None,
        keep: bool = False,
    ) -> None:
        return None

    async def wants_previews(self, job_id: str) -> bool:
        return False

    async def preview(self, job_id: str, frame: dict[str, Any], guard: Guard | None = None) -> None:
        return None

    async def close(self) -> None:
        return None
