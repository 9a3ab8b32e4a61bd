"""The ECS container agent's task scale-in protection endpoint, as the runner calls it in AWS.

``PUT /api/<task>/task-protection/v1/state`` with ``{"ProtectionEnabled": bool, "ExpiresInMinutes": n}``
answers ``{"protection": {...}}``, a bad body ``400 {"error": {...}}``; ``GET`` the same path answers the
task's state. Each runner gets its own ``<task>`` in ``ECS_AGENT_URI``, as each ECS task has its own.
For tests: ``GET /api/<task>/history`` lists every change with its time, and ``PUT /faults/<task>``
with ``{"status": 503}`` makes that task's calls fail (``{"status": 0}`` heals it).
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

STATE_SUFFIX = "/task-protection/v1/state"
HISTORY_SUFFIX = "/history"
# The agent's own default and ceiling for ExpiresInMinutes.
DEFAULT_MINUTES = 120
MAX_MINUTES = 2880
TASK_ARN = "arn:aws:ecs:us-east-1:123456789012:task/local/{task}"


class TaskProtectionState:
    """Every task's protection, its history and its injected faults; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._protected: dict[str, tuple[bool, float | None]] = {}
        self._history: dict[str, list[dict[str, Any]]] = {}
        self._faults: dict[str, int] = {}

    def fault(self, task: str) -> int:
        with self._lock:
            return self._faults.get(task, 0)

    def set_fault(self, task: str, status: int) -> None:
        with self._lock:
            self._faults[task] = status

    def set(self, task: str, enabled: bool, minutes: int) -> dict[str, Any]:
        now = time.time()
        with self._lock:
            self._protected[task] = (enabled, now + minutes * 60 if enabled else None)
            self._history.setdefault(task, []).append(
                {"ProtectionEnabled": enabled, "ExpiresInMinutes": minutes, "at_ms": int(now * 1000)}
            )
        return self.get(task)

    def get(self, task: str) -> dict[str, Any]:
        with self._lock:
            enabled, expires = self._protected.get(task, (False, None))
        if expires is not None and expires < time.time():
            enabled, expires = False, None
        return {
            "protection": {
                "ExpirationDate": (
                    datetime.fromtimestamp(expires, UTC).isoformat(timespec="milliseconds")
                    if expires
                    else None
                ),
                "ProtectionEnabled": enabled,
                "TaskArn": TASK_ARN.format(task=task),
            }
        }

    def history(self, task: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._history.get(task, []))


def _error(code: str, message: str, task: str) -> dict[str, Any]:
    return {"error": {"Arn": TASK_ARN.format(task=task), "Code": code, "Message": message}}


def _validated(body: Any) -> tuple[bool, int] | str:
    """(enabled, minutes), or what is wrong with the body, as the agent checks it."""
    if not isinstance(body, dict) or not isinstance(body.get("ProtectionEnabled"), bool):
        return "ProtectionEnabled is required and must be a boolean"
    minutes = body.get("ExpiresInMinutes", DEFAULT_MINUTES)
    if not isinstance(minutes, int) or isinstance(minutes, bool) or not 1 <= minutes <= MAX_MINUTES:
        return f"ExpiresInMinutes must be an integer from 1 to {MAX_MINUTES}"
    return body["ProtectionEnabled"], minutes


class _Handler(BaseHTTPRequestHandler):
    server: EcsAgentServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _task(self, suffix: str) -> str | None:
        if self.path.startswith("/api/") and self.path.endswith(suffix):
            task = self.path[len("/api/") : -len(suffix)]
            return task if task and "/" not in task else None
        return None

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            return json.loads(self.rfile.read(length) or b"null")
        except ValueError:
            return None

    def do_GET(self) -> None:
        state = self.server.state
        if (task := self._task(STATE_SUFFIX)) is not None:
            self._answer(HTTPStatus.OK, state.get(task))
        elif (task := self._task(HISTORY_SUFFIX)) is not None:
            self._answer(HTTPStatus.OK, state.history(task))
        else:
            self._answer(HTTPStatus.NOT_FOUND, {"error": {"Code": "NotFound", "Message": self.path}})

    def do_PUT(self) -> None:
        state = self.server.state
        if self.path.startswith("/faults/"):
            body = self._body()
            state.set_fault(self.path[len("/faults/") :], int((body or {}).get("status", 0)))
            self._answer(HTTPStatus.OK, {})
            return
        task = self._task(STATE_SUFFIX)
        if task is None:
            self._answer(HTTPStatus.NOT_FOUND, {"error": {"Code": "NotFound", "Message": self.path}})
            return
        if fault := state.fault(task):
            self._answer(fault, _error("ServerException", "injected fault", task))
            return
        checked = _validated(self._body())
        if isinstance(checked, str):
            self._answer(HTTPStatus.BAD_REQUEST, _error("InvalidParameterException", checked, task))
            return
        self._answer(HTTPStatus.OK, state.set(task, *checked))


class EcsAgentServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.state = TaskProtectionState()
        self._thread = threading.Thread(target=self.serve_forever, name="ecs-agent", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def task_uri(self, task: str) -> str:
        """What ECS_AGENT_URI holds for one task."""
        return f"{self.url}/api/{task}"

    def start(self) -> EcsAgentServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
