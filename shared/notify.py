"""Telling a job's WebSocket subscribers about a state change, from a Lambda function (synchronous)."""

from __future__ import annotations

from collections.abc import Callable

from shared import frames
from shared.aws.connections import ConnectionStore
from shared.aws.push import ConnectionPoster
from shared.events import state_seq
from shared.models import Job
from shared.views import job_view


def push_status(
    connections: ConnectionStore, poster: ConnectionPoster, job: Job, presign: Callable[[str], str]
) -> int:
    """Posts a job.status frame to every subscriber; deletes the subscriptions of the ones that are gone.
    Returns posts made."""
    view = job_view(job, presign) if job.status.is_terminal else None
    # Numbered by the transition just written; not logged: the job item itself holds a terminal state.
    frame = frames.numbered(frames.status(job, view), state_seq(job))
    subscribers = connections.subscribers(job.job_id)
    for connection_id in subscribers:
        if not poster.post(connection_id, frame):
            connections.unsubscribe(connection_id, job.job_id)
    return len(subscribers)
