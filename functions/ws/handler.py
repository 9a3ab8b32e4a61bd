"""The WebSocket routes that reach a function: the client actions and ``$default``.

``$connect`` is the authorizer's alone (a mock integration accepts what it lets in) and there is no
``$disconnect`` route: nothing is stored per connection, and a subscription outlives its socket only
until its TTL or the first post that answers 410 Gone (shared/aws/connections.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.observability import logger, tracer
from shared import frames
from shared.aws.clients import AwsClients
from shared.aws.connections import ConnectionStore
from shared.aws.events import EventLog
from shared.aws.jobs import JobStore
from shared.aws.push import ConnectionPoster
from shared.aws.storage import ArtifactStore
from shared.events import latest_seq, replay, state_seq
from shared.models import Job, JobStatus
from shared.names import WsAction
from shared.progress_rate import requested_rate
from shared.settings import WebSocketSettings
from shared.views import job_view

OK = {"statusCode": 200}


@dataclass
class WsDeps:
    settings: WebSocketSettings
    connections: ConnectionStore
    jobs: JobStore
    artifacts: ArtifactStore
    posters: dict[str, ConnectionPoster]
    events: EventLog

    def poster(self, event: dict[str, Any]) -> ConnectionPoster:
        context = event["requestContext"]
        endpoint = (
            self.settings.websocket_management_url or f"https://{context['domainName']}/{context['stage']}"
        )
        if endpoint not in self.posters:
            self.posters[endpoint] = ConnectionPoster(endpoint)
        return self.posters[endpoint]


@lru_cache(maxsize=1)
def _deps() -> WsDeps:
    settings = WebSocketSettings()
    clients = AwsClients()
    return WsDeps(
        settings,
        ConnectionStore(clients.dynamodb, settings.connections_table_name),
        JobStore(clients.dynamodb, settings.jobs_table_name),
        ArtifactStore(clients.s3, settings.bucket_name),
        {},
        EventLog(clients.dynamodb, settings.job_events_table_name),
    )


def _owner(event: dict[str, Any]) -> str:
    authorizer = event["requestContext"].get("authorizer") or {}
    return str(authorizer.get("owner") or authorizer.get("principalId") or "")


def _message(event: dict[str, Any]) -> dict[str, Any]:
    try:
        body = json.loads(event.get("body") or "")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _subscribe_options(message: dict[str, Any]) -> tuple[bool, int | None] | str:
    """``previews`` and ``after`` from a subscribe message, or what is wrong with them."""
    previews = message.get("previews", False)
    if not isinstance(previews, bool):
        return "'previews' must be true or false"
    after = message.get("after")
    if after is not None and (isinstance(after, bool) or not isinstance(after, int) or after < 0):
        return "'after' must be the non-negative integer 'seq' of the last event you received"
    return previews, after


def subscribe(deps: WsDeps, event: dict[str, Any], connection_id: str) -> dict[str, Any]:
    poster = deps.poster(event)
    message = _message(event)
    job_id = message.get("job_id")
    if not isinstance(job_id, str) or not job_id:
        poster.post(connection_id, frames.error("bad_request", "subscribe needs a 'job_id' string"))
        return OK
    options = _subscribe_options(message)
    if isinstance(options, str):
        poster.post(connection_id, frames.error("bad_request", options))
        return OK
    previews, after = options
    rate = requested_rate(message)
    if isinstance(rate, str):
        poster.post(connection_id, frames.error("bad_request", rate))
        return OK
    owner = _owner(event)
    # Half price: every path below reads the job strongly again once the subscription is in, and a job
    # submitted a moment ago that this read does not see yet is read strongly at once.
    job = deps.jobs.get(job_id, consistent=False) or deps.jobs.get(job_id)
    if job is None or job.owner != owner:
        poster.post(connection_id, frames.error("not_found", f"there is no job {job_id!r} for this token"))
        return OK
    ttl = deps.settings.output_url_ttl_seconds

    def presign(key: str) -> str:
        return deps.artifacts.presign_get(key, ttl)

    expires = int(time.time()) + deps.settings.connection_ttl_seconds
    if after is not None:
        _resume(
            deps, poster, connection_id, job, after, expires, previews=previews, rate=rate, presign=presign
        )
        return OK

    # The snapshot goes out before the subscription exists, so it is always the first frame; a state
    # change between the two reads reaches the client as a job.status (possibly once more from the
    # runner's fan-out, which is harmless), so nothing is lost in between.
    view = job_view(job, presign)
    poster.post(connection_id, frames.snapshot(view, latest_seq(job, _latest_logged(deps, job))))
    deps.connections.subscribe(connection_id, job_id, expires, previews=previews, progress_rate=rate)
    latest = deps.jobs.get(job_id) or job
    if latest.status.is_terminal or latest.status is not job.status:
        status = frames.status(latest, job_view(latest, presign))
        poster.post(connection_id, frames.numbered(status, state_seq(latest)))
    logger.debug("subscribed", extra={"job_id": job_id, "status": latest.status.value})
    return OK


def _log_is_empty(job: Job) -> bool:
    """Only a runner logs, and only once the job ran: a queued job has logged nothing yet (it never goes
    back to queued), so its log need not be read."""
    return job.status is JobStatus.QUEUED


def _latest_logged(deps: WsDeps, job: Job) -> int | None:
    return None if _log_is_empty(job) else deps.events.latest(job.job_id)


def _resume(
    deps: WsDeps,
    poster: ConnectionPoster,
    connection_id: str,
    job: Job,
    after: int,
    expires: int,
    *,
    previews: bool,
    rate: float,
    presign: Callable[[str], str],
) -> None:
    """What the client missed after ``after``, and nothing when it missed nothing.

    The replay leaves before the subscription exists, so no live frame can come before it, and
    ``job.replayed`` ends it only when there was one. What is logged between that read and the
    subscription (moments) follows as replay frames too; one of those may come after a newer live
    frame, and a client drops it as it drops every seq at or below the last it handled."""
    job_id = job.job_id

    def missed(current: Job, since: int) -> list[dict[str, Any]]:
        view = job_view(current, presign) if current.status.is_terminal else None
        logged = [] if _log_is_empty(current) else deps.events.after(job_id, since)
        return replay(current, logged, since, view)

    replayed = missed(job, after)
    for frame in replayed:
        poster.post(connection_id, {**frame, "replay": True})
    through = int(replayed[-1]["seq"]) if replayed else after
    if replayed:
        poster.post(connection_id, frames.replayed(job_id, through))
    if job.status.is_terminal:
        # Nothing follows a terminal state: the replay (or the client's own last seq) already says how.
        logger.debug("resumed", extra={"job_id": job_id, "after": after, "replayed": len(replayed)})
        return
    deps.connections.subscribe(connection_id, job_id, expires, previews=previews, progress_rate=rate)
    latest = deps.jobs.get(job_id) or job
    caught_up = missed(latest, through)
    for frame in caught_up:
        poster.post(connection_id, {**frame, "replay": True})
    logger.debug(
        "resumed", extra={"job_id": job_id, "after": after, "replayed": len(replayed) + len(caught_up)}
    )


def unsubscribe(deps: WsDeps, event: dict[str, Any], connection_id: str) -> dict[str, Any]:
    job_id = _message(event).get("job_id")
    if isinstance(job_id, str) and job_id:
        deps.connections.unsubscribe(connection_id, job_id)
    else:
        deps.poster(event).post(
            connection_id, frames.error("bad_request", "unsubscribe needs a 'job_id' string")
        )
    return OK


def ping(deps: WsDeps, event: dict[str, Any], connection_id: str) -> dict[str, Any]:
    deps.poster(event).post(connection_id, frames.pong())
    return OK


def default(deps: WsDeps, event: dict[str, Any], connection_id: str) -> dict[str, Any]:
    action = _message(event).get("action")
    detail = (
        f"unknown action {action!r}"
        if action
        else "send JSON with an 'action': subscribe, unsubscribe or ping"
    )
    deps.poster(event).post(connection_id, frames.error("unknown_action", detail))
    return OK


ROUTES: dict[str, Callable[[WsDeps, dict[str, Any], str], dict[str, Any]]] = {
    WsAction.SUBSCRIBE: subscribe,
    WsAction.UNSUBSCRIBE: unsubscribe,
    WsAction.PING: ping,
    "$default": default,
}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = event["requestContext"]
    route = ROUTES.get(request["routeKey"], default)
    logger.append_keys(connection_id=request["connectionId"], route=request["routeKey"])
    return route(_deps(), event, request["connectionId"])
