"""Where the runner tells the world about a job: the WebSocket fan-out plugs in here."""

from __future__ import annotations

from typing import Protocol

from shared.models import Job


class Notifier(Protocol):
    async def status(self, job: Job) -> None:
        """The job changed state (``job`` is the state just written)."""

    async def progress(
        self, job: Job, node_id: str, node_type: str | None, value: float, maximum: float
    ) -> None:
        """The job moved on; ``job.progress`` holds the whole job's percent."""

    async def close(self) -> None: ...


class NoSubscribers:
    """Used when no WebSocket API is configured: status still lands in DynamoDB, nothing is pushed."""

    async def status(self, job: Job) -> None:
        return None

    async def progress(
        self, job: Job, node_id: str, node_type: str | None, value: float, maximum: float
    ) -> None:
        return None

    async def close(self) -> None:
        return None
