"""When a delivery's next attempt is due: exponential backoff with jitter, or the receiver's Retry-After."""

from __future__ import annotations

import random
from dataclasses import dataclass
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float
    max_delay_seconds: float
    # No attempt starts later than this after the first one.
    window_seconds: float

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """The wait after failed attempt ``attempt`` (1-based): "equal jitter", between half and all of
        ``base * 2^(attempt-1)`` (capped), so receivers that failed together are not retried together."""
        ceiling = min(self.max_delay_seconds, self.base_seconds * 2 ** min(attempt - 1, 40))
        return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)

    def next_delay(
        self,
        attempt: int,
        first_attempt_at: float,
        now: float,
        retry_after: float | None = None,
        rng: random.Random | None = None,
    ) -> float | None:
        """Seconds until the next attempt, or None when the window leaves no room for one.

        A receiver's Retry-After is honoured (up to the longest backoff), in place of the backoff.
        """
        if retry_after is not None:
            delay = min(max(retry_after, 0.0), self.max_delay_seconds)
        else:
            delay = self.backoff(attempt, rng)
        if now + delay > first_attempt_at + self.window_seconds:
            return None
        return delay


def parse_retry_after(value: str | None, now: float) -> float | None:
    """RFC 9110 Retry-After: delay-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(parsedate_to_datetime(value).timestamp() - now, 0.0)
    except (TypeError, ValueError, IndexError):
        return None
