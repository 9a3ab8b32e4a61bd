"""The cancel mark the API puts in a running job's partition of the connections table, so that the
runner, whose fan-out reads that partition for every frame, hears the cancel without a poll of its own
while frames flow (shared/aws/connections.py, gpu_runner/cancel_watch.py)."""

from __future__ import annotations

from functions.observability import logger
from shared.aws.connections import CANCEL_MARK_TTL_SECONDS, ConnectionStore


def mark_cancel(connections: ConnectionStore | None, job_id: str, now_ms: int) -> bool:
    """Puts the mark; False when there is no connections table (the runner then polls, having no
    lookups to learn from). A failed put raises ServiceUnavailable before the cancel is written: a
    cancel without its mark could go unheard while frames flow."""
    if connections is None:
        return False
    connections.mark_cancel(job_id, now_ms // 1000 + CANCEL_MARK_TTL_SECONDS)
    return True


def clear_cancel_mark(connections: ConnectionStore | None, job_id: str) -> None:
    """Removes the mark of a cancel that was not written. Best effort: a mark left behind only makes the
    runner read the job once and then poll as it would without lookups."""
    if connections is None:
        return
    try:
        connections.clear_cancel_mark(job_id)
    except Exception as error:
        logger.warning("could not clear the cancel mark", extra={"job_id": job_id, "error": str(error)})
