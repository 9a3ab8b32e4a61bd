"""Which of a job's subscribers a job.progress frame goes to: each at the rate it asked for, and only
when the job's percent moved since the last frame it got (``shared.progress_rate``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from shared.aws.connections import Subscription
from shared.progress_rate import MAX_PROGRESS_RATE


class ProgressGate:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # connection id -> (when, percent) of the last progress frame it was sent
        self._sent: dict[str, tuple[float, float]] = {}

    def due(self, subscriptions: list[Subscription], percent: float) -> list[str]:
        """The connections this frame goes to; they count as sent from now."""
        now = self._clock()
        chosen = []
        for subscription in subscriptions:
            if subscription.progress_rate <= 0:
                continue
            if subscription.progress_rate >= MAX_PROGRESS_RATE:
                # At the ceiling (the default) the job's own coalescing is the only limit, as it always
                # was: its newest frame is never held back.
                chosen.append(subscription.connection_id)
                continue
            last = self._sent.get(subscription.connection_id)
            if last is not None:
                sent_at, sent_percent = last
                # Below it, a frame held back is superseded by the next, or by the status.
                if percent == sent_percent or now - sent_at < 1 / subscription.progress_rate:
                    continue
            chosen.append(subscription.connection_id)
            self._sent[subscription.connection_id] = (now, percent)
        return chosen
