"""The pool's queues a runner reads: the priority lane first, when the pool has one.

Without a priority lane this is the one long poll it always was. With one, the priority lane is read
without waiting and the standard lane with a short wait, so a priority job waits at most that long
for an idle runner; a busy runner takes the priority job first when its next slot frees.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.aws.queue import JobQueue, ReceivedMessage


@dataclass(frozen=True)
class Received:
    queue: JobQueue
    message: ReceivedMessage


class Lanes:
    def __init__(
        self, standard: JobQueue, priority: JobQueue | None, priority_poll_wait_seconds: int
    ) -> None:
        self.standard = standard
        self.priority = priority
        self._short_wait = priority_poll_wait_seconds

    def queues(self) -> list[JobQueue]:
        return [q for q in (self.priority, self.standard) if q is not None]

    def receive(self, wait_seconds: int, visibility_seconds: int) -> list[Received]:
        """At most one message: the runner takes jobs one at a time, as its capacity frees."""
        if self.priority is None:
            return [
                Received(self.standard, m) for m in self.standard.receive(1, wait_seconds, visibility_seconds)
            ]
        urgent = self.priority.receive(1, 0, visibility_seconds)
        if urgent:
            return [Received(self.priority, m) for m in urgent]
        wait = min(wait_seconds, self._short_wait)
        return [Received(self.standard, m) for m in self.standard.receive(1, wait, visibility_seconds)]
