"""The REST client: submit, read, list, cancel, upload, templates, watch, wait and download."""

from __future__ import annotations

import builtins
import contextlib
import mimetypes
import os
import random
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import requests

from comfy_jobs.errors import (
    ConnectionFailed,
    ServiceUnavailable,
    error_for,
    problem_from_body,
)
from comfy_jobs.models import Event, Job, Model, Snapshot, StatusChange, Template, Upload
from comfy_jobs.watch import Connect, Deadline, default_connect, watch_job
from comfy_jobs.webhooks import Webhooks

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_WAIT = 20  # the most the API holds a request open for `Prefer: wait`
MAX_PAGE = 100


# Progress events a second that wait() asks for by default: a bar that moves every five seconds, at a
# fraction of the messages (each billed) that the server's default sends; a caller may ask for more.
WAIT_PROGRESS_RATE = 0.2


class Client:
    """A client of one deployment, authenticated with one API key.

    ``base_url`` and ``api_key`` default to ``COMFY_API_URL`` and ``COMFY_API_KEY``. Timeouts, connection
    errors, 429 and 5xx answers are retried ``retries`` times with backoff, honouring ``Retry-After``.
    """

    # What deadlines are measured with (a test may give a fake one).
    clock: Callable[[], float] = staticmethod(time.monotonic)

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        *,
        backoff: float = 0.5,
        session: requests.Session | None = None,
    ) -> None:
        base_url = base_url or os.environ.get("COMFY_API_URL")
        api_key = api_key or os.environ.get("COMFY_API_KEY")
        if not base_url:
            raise ValueError("no API URL: pass base_url or set COMFY_API_URL")
        if not api_key:
            raise ValueError("no API key: pass api_key or set COMFY_API_KEY")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.session = session or requests.Session()
        self.session.headers["x-api-key"] = api_key
        self.session.headers.setdefault("User-Agent", "comfy-jobs-python/0.1")
        # Presigned S3 URLs must not receive the API key.
        self.storage = requests.Session()
        # job id -> the WebSocket URL its submit answer carried, used by the first watch of the job.
        self._socket_urls: dict[str, str] = {}
        # The seq of each job as its submit answer showed it: wait() follows from there, with no snapshot.
        self._receipt_seqs: dict[str, int] = {}
        for prefix, adapter in self.session.adapters.items():
            self.storage.mount(prefix, adapter)

    # -- transport -------------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        wait: int | None = None,
        prefer: Sequence[str] = (),
    ) -> requests.Response:
        """One API call with retries; raises an ``ApiError`` for any answer that is not 2xx."""
        headers = dict(headers or {})
        preferences = list(prefer)
        if wait is not None:
            preferences.insert(0, f"wait={max(0, min(int(wait), MAX_WAIT))}")
        if preferences:
            headers["Prefer"] = ", ".join(preferences)
        read_timeout = self.timeout + (MAX_WAIT if wait else 0)
        url = self.base_url + path
        attempt = 0
        while True:
            try:
                response = self.session.request(
                    method, url, json=json, params=params, headers=headers, timeout=(10, read_timeout)
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt >= self.retries:
                    raise ConnectionFailed(f"{method} {path}: {exc}") from exc
                self._sleep(attempt, None)
                attempt += 1
                continue
            if response.ok:
                return response
            if response.status_code in RETRY_STATUSES and attempt < self.retries:
                self._sleep(attempt, response.headers.get("Retry-After"))
                attempt += 1
                continue
            raise self._error(response)

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        delay = self.backoff * 2**attempt * (0.5 + random.random())
        if retry_after is not None:
            with contextlib.suppress(ValueError):  # an HTTP date: the backoff will do
                delay = max(delay, float(retry_after))
        time.sleep(min(delay, 30.0))

    @staticmethod
    def _error(response: requests.Response) -> Exception:
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        problem = problem_from_body(response.status_code, body, response.text, response.reason or "")
        return error_for(response.status_code, problem, response.headers)

    # -- jobs ------------------------------------------------------------------------------------------

    def submit(
        self,
        workflow: dict[str, Any] | None = None,
        *,
        template: str | None = None,
        params: Mapping[str, Any] | None = None,
        uploads: Mapping[str, str | os.PathLike[str]] | None = None,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        wait: int | None = None,
        webhook: str | None = None,
        webhook_events: builtins.list[str] | None = None,
    ) -> Job:
        """Submit a workflow (API format) or a template with params; returns the job (finished if ``wait``).

        ``uploads`` maps a name to a local file: each file is uploaded and its ``upload://`` ref becomes the
        template param of that name, or, for a workflow, the input of that name (``"node.input"`` or a bare
        input name, set on every node whose input of that name is not a link).
        """
        if (workflow is None) == (template is None):
            raise ValueError("give exactly one of workflow or template")
        if workflow is not None and uploads:
            require_api_format(workflow)  # before any upload: a file sent for nothing is a waste
        refs = {name: self.upload(path).ref for name, path in (uploads or {}).items()}
        body: dict[str, Any]
        if template is not None:
            body = {"template": template, "params": {**(params or {}), **refs}}
        else:
            if params:
                raise ValueError("params go with a template; put a workflow's values in the workflow")
            # Sent as given: the API says best what is wrong with a workflow (a UI-format file, say).
            body = {"workflow": with_inputs(workflow, refs) if refs else workflow}
        if metadata is not None:
            body["metadata"] = metadata
        if webhook is not None:  # signed with the tenant's job-webhook secret (client.webhooks.job_secret())
            body["webhook"] = {"url": webhook, **({"events": webhook_events} if webhook_events else {})}
        # One key for every retry below, so a lost answer never becomes a second job.
        key = idempotency_key or str(uuid.uuid4())
        # The WebSocket URL comes with the answer, so following the job costs no second request.
        response = self.request(
            "POST", "/v1/jobs", json=body, headers={"Idempotency-Key": key}, wait=wait, prefer=["websocket"]
        )
        job = Job.from_dict(response.json())
        if url := response.headers.get("WebSocket-Url"):
            self._socket_urls[job.job_id] = url
        if job.seq is not None:
            self._receipt_seqs[job.job_id] = job.seq
        return job

    @property
    def webhooks(self) -> Webhooks:
        """Webhook endpoints, the job-webhook secret, and a job's deliveries."""
        return Webhooks(self)

    def get(self, job_id: str, wait: int | None = None) -> Job:
        """The job; with ``wait`` (seconds, at most 20) the API answers when it ends, or at the limit."""
        return Job.from_dict(self.request("GET", f"/v1/jobs/{job_id}", wait=wait).json())

    def list(self, status: str | None = None, limit: int | None = None, page_size: int = 50) -> Iterator[Job]:
        """Your jobs, newest first, following ``next_cursor`` page by page; ``limit`` caps how many."""
        cursor: str | None = None
        seen = 0
        while limit is None or seen < limit:
            params: dict[str, Any] = {
                "limit": min(page_size, MAX_PAGE, (limit - seen) if limit else MAX_PAGE)
            }
            if status:
                params["status"] = status
            if cursor:
                params["cursor"] = cursor
            page = self.request("GET", "/v1/jobs", params=params).json()
            for item in page.get("items", []):
                yield Job.from_dict(item)
                seen += 1
                if limit is not None and seen >= limit:
                    return
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def cancel(self, job_id: str) -> Job:
        """Cancels a queued job at once, a running one soon after (``cancel_requested``); 409 if it ended."""
        return Job.from_dict(self.request("DELETE", f"/v1/jobs/{job_id}").json())

    # -- uploads and templates -------------------------------------------------------------------------

    def upload(self, path: str | os.PathLike[str], content_type: str | None = None) -> Upload:
        """Uploads a local file for a workflow input; use the returned ``ref`` (``upload://...``)."""
        path = Path(path)
        content_type = content_type or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        data = path.read_bytes()
        upload = Upload.from_dict(
            self.request(
                "POST", "/v1/uploads", json={"content_type": content_type, "filename": path.name}
            ).json()
        )
        if upload.max_bytes is not None and len(data) > upload.max_bytes:
            raise ValueError(f"{path} is {len(data)} bytes; uploads may be at most {upload.max_bytes}")
        # A form upload: the signed fields first, the file last (S3 reads the fields before the file).
        response = self.storage.request(
            upload.method, upload.url, data=upload.fields, files={"file": (path.name, data)}, timeout=120
        )
        if not response.ok:
            raise self._error(response)
        return upload

    def models(self, folder: str | None = None, page_size: int = MAX_PAGE) -> Iterator[Model]:
        """The model library (checkpoints, LoRAs, VAEs, ...), in folder and name order, page by page."""
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": min(page_size, MAX_PAGE)}
            if folder:
                params["folder"] = folder
            if cursor:
                params["cursor"] = cursor
            page = self.request("GET", "/v1/models", params=params).json()
            for item in page.get("items", []):
                yield Model.from_dict(item)
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def templates(self) -> builtins.list[Template]:
        return [Template.from_dict(t) for t in self.request("GET", "/v1/templates").json().get("items", [])]

    def template(self, name: str) -> Template:
        return Template.from_dict(self.request("GET", f"/v1/templates/{name}").json())

    # -- following a job -------------------------------------------------------------------------------

    def ws_url(self) -> str:
        """A WebSocket URL carrying a fresh short-lived token."""
        return str(self.request("POST", "/v1/ws-tokens").json()["url"])

    def _ws_url_for(self, job_id: str) -> Callable[[], str]:
        """The URL the job's submit answer carried, first (once: tokens are short-lived), then fresh ones."""

        def url() -> str:
            given = self._socket_urls.pop(job_id, None)
            return given if given is not None else self.ws_url()

        return url

    def connect(self, url: str, timeout: float) -> Any:
        """Opens a WebSocket; a subclass may override it (to trace or wrap the socket)."""
        return default_connect(url, timeout)

    def watch(
        self,
        job_id: str,
        timeout: float | None = None,
        reconnects: int = 5,
        previews: bool = False,
        progress_rate: float | None = None,
        after: int | None = None,
    ) -> Iterator[Event]:
        """The job's events (Snapshot, Progress, StatusChange, Preview, ErrorEvent) until a terminal
        StatusChange, each once and in order.

        Starts with a Snapshot of the job, or, given ``after`` (the ``seq`` of the job as you last saw it,
        e.g. ``submit()``'s answer's), with only what happened since: no Snapshot, and nothing at all
        until the job moves when nothing was missed. A dropped socket is reopened with a fresh token and
        re-subscribed after the last event seen: what happened meanwhile is replayed first. ``previews``
        asks for live JPEG previews (about one a second). ``progress_rate``: at most that many Progress
        events a second (each is a billed message), 0 for none, None for the server's default.
        """
        connect: Connect = self.connect
        return watch_job(
            job_id,
            self._ws_url_for(job_id),
            timeout=timeout,
            reconnects=reconnects,
            connect=connect,
            poll=lambda: self.get(job_id),
            clock=self.clock,
            previews=previews,
            progress_rate=progress_rate,
            after=after,
        )

    def events(self, job_id: str, after: int = 0) -> tuple[builtins.list[dict[str, Any]], int]:
        """The job's logged events after ``after`` (``GET /v1/jobs/{id}/events``), and the ``seq`` to ask
        after next time: for clients that poll instead of holding a WebSocket."""
        body = self.request("GET", f"/v1/jobs/{job_id}/events", params={"after": after}).json()
        return list(body["items"]), int(body["last_seq"])

    def wait(
        self,
        job_id: str,
        timeout: float | None = None,
        on_event: Callable[[Event], None] | None = None,
        previews: bool = False,
        progress_rate: float | None = WAIT_PROGRESS_RATE,
    ) -> Job:
        """Blocks until the job ends and returns it; follows the WebSocket, or polls when it cannot.

        Progress events come at most ``progress_rate`` a second (0.2 by default: a bar that moves every
        five seconds; ask more for a livelier one), and only to an ``on_event`` callback: without one,
        none are asked for (each is a billed message nobody would see), only the status changes. A job
        this client submitted is followed from its submit answer's ``seq``: no snapshot, only what
        happened since."""
        deadline = Deadline(timeout, job_id, self.clock)
        after = self._receipt_seqs.pop(job_id, None)
        rate = progress_rate if on_event is not None else 0
        try:
            events = self.watch(job_id, timeout=timeout, previews=previews, progress_rate=rate, after=after)
            for event in events:
                if on_event is not None:
                    on_event(event)
                if isinstance(event, StatusChange | Snapshot) and _ended(event):
                    # The terminal frame carries the whole job, outputs' URLs included: no read needed.
                    ended = event.job
                    if ended is not None and ended.is_terminal:
                        return ended
                    break
        except (ServiceUnavailable, ConnectionFailed):
            pass  # no WebSocket API here, or it keeps failing: polling still works
        while True:
            remaining = deadline.remaining()
            # The API holds the request at most the whole seconds left, so the answer comes by the deadline.
            job = self.get(
                job_id, wait=MAX_WAIT if remaining is None else int(max(0, min(MAX_WAIT, remaining)))
            )
            if job.is_terminal:
                return job
            time.sleep(deadline.bound(0.5))  # in case the API ignores `Prefer: wait`

    def download(self, job: Job | str, directory: str | os.PathLike[str] = ".") -> builtins.list[Path]:
        """Saves the job's outputs into ``directory`` under their own file names; returns the paths."""
        if isinstance(job, str):
            job = self.get(job)
        target = Path(directory)
        target.mkdir(parents=True, exist_ok=True)
        saved = []
        for output in job.outputs:
            response = self.storage.get(output.url, timeout=120, stream=True)
            if response.status_code in (400, 403):
                # Presigned URLs expire: a fresh read of the job signs new ones.
                fresh = {o.filename: o.url for o in self.get(job.job_id).outputs}
                response = self.storage.get(fresh.get(output.filename, output.url), timeout=120, stream=True)
            if not response.ok:
                raise self._error(response)
            path = target / Path(output.filename).name  # never outside the directory
            with path.open("wb") as file:
                for chunk in response.iter_content(1 << 16):
                    file.write(chunk)
            saved.append(path)
        return saved


def _ended(event: StatusChange | Snapshot) -> bool:
    return event.job.is_terminal if isinstance(event, Snapshot) else event.is_terminal


def require_api_format(workflow: Any) -> None:
    """Raise ValueError unless ``workflow`` is shaped as ComfyUI's API format, where inputs can be set."""
    if not isinstance(workflow, dict) or not all(
        isinstance(node, dict) and isinstance(node.get("inputs", {}), dict) for node in workflow.values()
    ):
        raise ValueError(
            "the workflow is not in ComfyUI's API format (an object of nodes, each with 'inputs'), so no "
            "input can be set in it; in ComfyUI use Workflow > Export (API)"
        )


def with_inputs(workflow: dict[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``workflow`` with each named input set: ``"node.input"``, or a bare input name on every
    node that has it as a literal (not a link)."""
    require_api_format(workflow)
    graph = {node_id: {**node, "inputs": dict(node.get("inputs", {}))} for node_id, node in workflow.items()}
    for name, value in values.items():
        node_id, dot, input_name = name.partition(".")
        if dot:
            if node_id not in graph:
                raise ValueError(f"the workflow has no node {node_id!r} for input {name!r}")
            graph[node_id]["inputs"][input_name] = value
            continue
        targets = [
            n for n in graph.values() if name in n["inputs"] and not isinstance(n["inputs"][name], list)
        ]
        if not targets:
            raise ValueError(f"no node in the workflow has a literal input {name!r}")
        for node in targets:
            node["inputs"][name] = value
    return graph
