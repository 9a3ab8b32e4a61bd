"""Following one job over the WebSocket API, reconnecting with a fresh token when the socket drops.

Every job event carries ``seq``, a number that only grows. A subscription that knows where the job was
(the submit answer's ``seq``, or after a reconnection the last one seen) subscribes with ``after``: the
server replays only what was missed, before any live frame, ends a replay with ``job.replayed`` (and
sends nothing at all when nothing was missed: no snapshot), then live frames go on. What the job logged
while the subscription was being made may follow as replay frames after a newer live one, and a frame
may come both ways, so anything at or below the last ``seq`` yielded is dropped. Without ``after`` the
subscription starts with a snapshot of the job.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import websocket

from comfy_jobs.errors import ComfyJobsError, ConnectionFailed, NotFound, WaitTimeout
from comfy_jobs.models import (
    ErrorEvent,
    Event,
    Job,
    Progress,
    Replayed,
    Snapshot,
    StatusChange,
    parse_event,
)

# How long a socket may stay silent before we ping it and re-read the job over REST: the fan-out can miss
# a subscriber that joined moments before the job ended, so silence is checked rather than trusted.
IDLE_SECONDS = 5.0
# The first check comes sooner: the fan-out's read of the job's subscribers is eventually consistent and
# may show a new subscription a moment late, so a job that ended just then is read over REST rather than
# waited for.
FIRST_IDLE_SECONDS = 3.0
# Once frames flow, silence is checked only after this many progress intervals: at a low progress rate
# the frames themselves are seconds apart, and a ping or a REST read in every gap would cost more than
# the frames it saves.
IDLE_INTERVALS = 1.5
# Without progress frames a running job is silent until its next state change: a ping this often proves
# the socket (and keeps it under API Gateway's 10-minute idle timeout).
IDLE_WITHOUT_PROGRESS = 30.0
# Once a frame has come the fan-out sees this subscription, so silence is answered with a ping; the job
# is read over REST only this often, in case a state change's frame was lost on the way.
STEADY_POLL_SECONDS = 60.0


def steady_idle(idle: float, progress_rate: float | None) -> float:
    """How long the socket may stay silent once a frame has come: ``idle``, or longer at a low rate."""
    if progress_rate is None:
        return idle
    if progress_rate <= 0:
        return max(idle, IDLE_WITHOUT_PROGRESS)
    return max(idle, IDLE_INTERVALS / progress_rate)


class _Poll:
    """Reads the job over REST on silence: at every silence until a frame has come, then at most every
    ``STEADY_POLL_SECONDS``."""

    def __init__(self, read: Callable[[], Job] | None, clock: Callable[[], float]) -> None:
        self._read = read
        self._clock = clock
        self._every = 0.0
        self._last = clock()

    def frames_flow(self) -> None:
        self._every = STEADY_POLL_SECONDS

    def __call__(self) -> Job | None:
        if self._read is None or self._clock() - self._last < self._every:
            return None
        self._last = self._clock()
        return self._read()


Connect = Callable[[str, float], websocket.WebSocket]


def default_connect(url: str, timeout: float) -> websocket.WebSocket:
    return websocket.create_connection(url, timeout=timeout)


def _ended(job: Job) -> StatusChange:
    return StatusChange(job.job_id, job.status, None, job.outputs, job.error)


def _stale(event: Event, snapshot: Snapshot) -> bool:
    """An early frame the snapshot already covers."""
    if isinstance(event, Progress):
        return event.percent < snapshot.job.progress
    return isinstance(event, StatusChange) and event.status == snapshot.job.status


class _Order:
    """The ``seq`` of the newest event yielded: one at or below it was seen already."""

    def __init__(self) -> None:
        self.last: int | None = None

    def fresh(self, event: Event) -> bool:
        seq = getattr(event, "seq", None)
        if seq is None:
            return True
        if self.last is not None and seq <= self.last:
            return False
        self.last = seq
        return True


class _Dropped(Exception):
    """The socket went away; the watcher reconnects."""


class Deadline:
    """When a wait must end; ``None`` seconds is never. Reads its own clock, so tests can give a fake one."""

    def __init__(self, seconds: float | None, job_id: str, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._seconds = seconds
        self._job_id = job_id
        self._at = None if seconds is None else clock() + seconds

    def remaining(self) -> float | None:
        return None if self._at is None else self._at - self._clock()

    def bound(self, seconds: float) -> float:
        """``seconds``, or less when the deadline comes sooner; raises WaitTimeout once it has passed."""
        remaining = self.remaining()
        if remaining is None:
            return seconds
        if remaining <= 0:
            raise WaitTimeout(f"job {self._job_id} did not finish within {self._seconds:g} s")
        return min(seconds, remaining)


def _receive(socket: websocket.WebSocket, poll: _Poll, idle: float, deadline: Deadline) -> str | Job:
    """The next text frame, or the job (read over REST) if it has ended while the socket stayed silent."""
    pinged = False
    while True:
        try:
            text = socket.recv()
        except websocket.WebSocketTimeoutException:
            # Every wait on the socket ends by the deadline, so a silent socket cannot outlast it.
            socket.settimeout(deadline.bound(idle))
            job = poll()
            if job is not None and job.is_terminal:
                return job
            if pinged:
                raise _Dropped("no answer to a ping") from None
            socket.send(json.dumps({"action": "ping"}))
            pinged = True
            continue
        except (websocket.WebSocketException, OSError) as exc:
            raise _Dropped(str(exc)) from exc
        if not text:
            raise _Dropped("the server closed the connection")  # a close frame reads as ""
        return text if isinstance(text, str) else text.decode()


def watch_job(
    job_id: str,
    socket_url: Callable[[], str],
    *,
    timeout: float | None = None,
    reconnects: int = 5,
    connect: Connect = default_connect,
    idle: float = IDLE_SECONDS,
    poll: Callable[[], Job] | None = None,
    clock: Callable[[], float] = time.monotonic,
    previews: bool = False,
    progress_rate: float | None = None,
    after: int | None = None,
) -> Iterator[Event]:
    """Yields the job's events until a terminal ``StatusChange``, each once and in order.

    Without ``after`` the first subscription starts with a Snapshot; with it (the ``seq`` of the job as
    the caller knows it, e.g. its submit answer's) only what came after it. A reconnection resumes after
    the last event seen.
    ``socket_url`` returns a URL with a fresh token each time, since tokens are short-lived; ``poll`` reads
    the job over REST when the socket has been silent for ``idle`` seconds; ``previews`` asks for
    ``Preview`` events (live JPEGs, about one a second); ``progress_rate`` for at most that many
    progress events a second (0: none; None: the server's default).
    """
    deadline = Deadline(timeout, job_id, clock)
    failures = 0
    order = _Order()
    order.last = after
    quiet = steady_idle(idle, progress_rate)
    polled = _Poll(poll, clock)
    while True:
        socket: websocket.WebSocket | None = None
        try:
            socket = connect(socket_url(), deadline.bound(min(FIRST_IDLE_SECONDS, idle)))
            resume = order.last is not None
            message: dict[str, object] = {"action": "subscribe", "job_id": job_id}
            if previews:
                message["previews"] = True
            if progress_rate is not None:
                message["progress_rate"] = progress_rate
            if resume:
                message["after"] = order.last
            socket.send(json.dumps(message))
            # Without ``after``, frames that come before the snapshot are held; with it, nothing comes
            # before the replay (if any), so nothing is held: order.fresh drops what is not new.
            held: list[Event] | None = None if resume else []
            while True:
                deadline.bound(idle)
                received = _receive(socket, polled, idle, deadline)
                if isinstance(received, Job):
                    yield _ended(received)
                    return
                # A frame came, so the fan-out sees this subscription: silence now means a gap between
                # frames, checked at the pace of the progress asked for.
                socket.settimeout(deadline.bound(quiet))
                idle, failures = quiet, 0
                polled.frames_flow()
                event = parse_event(json.loads(received))
                if event is None:
                    continue
                if isinstance(event, ErrorEvent) and event.code == "not_found":
                    raise NotFound(404, {"title": "Not Found", "detail": event.message})
                if isinstance(event, Replayed):
                    continue  # the replay's frames came before it, in order
                if held is not None and isinstance(event, Snapshot):
                    batch = [event, *(e for e in held if not _stale(e, event))]
                    held = None
                elif held is not None and not isinstance(event, ErrorEvent):
                    held.append(event)
                    continue
                else:
                    batch = [event]
                for item in batch:
                    if not order.fresh(item):
                        continue
                    yield item
                    if isinstance(item, Snapshot) and item.job.is_terminal:
                        # It ended before (or while) we were away: its snapshot already says how.
                        yield _ended(item.job)
                        return
                    if isinstance(item, StatusChange) and item.is_terminal:
                        return
        except ComfyJobsError:
            raise  # WaitTimeout is an OSError too: it must not count as a drop
        except (_Dropped, websocket.WebSocketException, OSError) as exc:
            failures += 1
            if failures > reconnects:
                raise ConnectionFailed(f"the WebSocket for job {job_id} kept dropping: {exc}") from exc
            time.sleep(deadline.bound(min(0.2 * 2**failures, 5.0)))
        finally:
            if socket is not None:
                socket.close(timeout=1)
