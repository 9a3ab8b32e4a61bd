"""SQS fair queues, which moto does not have: a standard queue whose messages carry a MessageGroupId.

In AWS, when one message group (here: one tenant) has many more messages in flight than the others,
a fair queue delivers the other groups' messages first, so a tenant's large backlog does not hold back
another tenant's single job. moto delivers a standard queue's visible messages in the order they came.
This makes moto's receive offer the visible messages of the groups with the fewest messages in flight
first (in arrival order within each), which is the behaviour AWS describes, not its exact algorithm:
AWS only steps in once it sees a group's share of the in-flight messages as disproportionate.
FIFO queues and messages without a group are untouched.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from moto.sqs.models import Message, Queue

_installed = False


def install() -> None:
    """Make every moto SQS queue in this process fair (idempotent)."""
    global _installed
    if _installed:
        return
    arrival_order = Queue.messages.fget  # type: ignore[attr-defined]

    def fair_order(queue: Any) -> list[Message]:
        visible: list[Message] = arrival_order(queue)
        if queue.fifo_queue or not any(m.group_id for m in visible):
            return visible
        in_flight = Counter(m.group_id for m in queue._messages if m.group_id and not m.visible)
        return sorted(visible, key=lambda m: in_flight[m.group_id])

    Queue.messages = property(fair_order)  # type: ignore[assignment,method-assign]
    _installed = True
