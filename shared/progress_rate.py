"""How many job.progress frames a second a subscriber asks for (``progress_rate`` in ``subscribe``).

Each frame is a WebSocket message, billed per message: a client that draws a progress bar needs far
fewer than ComfyUI sends (one per sampler step). Whatever the rate, a frame only goes out when the job's
percent has changed since the last one that subscriber got, and status frames are never held back.
"""

from __future__ import annotations

from typing import Any

# The fan-out's own ceiling (gpu_runner.fanout coalesces a job's progress to ten frames a second).
MAX_PROGRESS_RATE = 10.0
# Frames a second when the subscribe message names none: the ceiling, as before clients could ask.
DEFAULT_PROGRESS_RATE = MAX_PROGRESS_RATE
FIELD = "progress_rate"


def requested_rate(message: dict[str, Any]) -> float | str:
    """The rate the message asks for, or what is wrong with it (an error for the client)."""
    if FIELD not in message:
        return DEFAULT_PROGRESS_RATE
    rate = message[FIELD]
    if isinstance(rate, bool) or not isinstance(rate, int | float):
        return f"'{FIELD}' must be a number of frames a second (0 for none, at most {MAX_PROGRESS_RATE:g})"
    if not 0 <= rate <= MAX_PROGRESS_RATE:
        return f"'{FIELD}' must be between 0 (no progress frames) and {MAX_PROGRESS_RATE:g}, got {rate}"
    return float(rate)
