"""A client of the WebSocket API that timestamps every frame as it arrives, per job."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from typing import Any

import websocket

TERMINAL = {"succeeded", "failed", "canceled", "expired"}

Arrival = tuple[float, dict[str, Any]]


class JobSocket:
    """One connection, many subscriptions; a reader thread keeps (epoch seconds, frame) per job."""

    def __init__(self, url: str) -> None:
        self._ws = websocket.create_connection(url, timeout=15)
        self._ws.settimeout(None)
        self._lock = threading.Lock()
        self._frames: dict[str, list[Arrival]] = defaultdict(list)
        self._terminal: dict[str, float] = {}
        self._events: dict[str, threading.Event] = defaultdict(threading.Event)
        self.frames_received = 0
        self._reader = threading.Thread(target=self._read, name="bench-ws-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                raw = self._ws.recv()
            except (websocket.WebSocketException, OSError):
                return
            at = time.time()
            if not raw:  # the close frame
                return
            frame = json.loads(raw)
            job_id = frame.get("job_id") or (frame.get("job") or {}).get("job_id") or ""
            with self._lock:
                self.frames_received += 1
                self._frames[job_id].append((at, frame))
                if frame.get("type") == "job.status" and frame.get("status") in TERMINAL:
                    self._terminal.setdefault(job_id, at)
                    self._events[job_id].set()

    def subscribe(self, job_id: str) -> None:
        self._ws.send(json.dumps({"action": "subscribe", "job_id": job_id}))

    def wait_terminal(self, job_id: str, timeout: float) -> float | None:
        """Arrival time of the job's first terminal ``job.status`` frame, or None on timeout."""
        with self._lock:
            event = self._events[job_id]
        if not event.wait(timeout):
            return None
        with self._lock:
            return self._terminal[job_id]

    def frames(self, job_id: str) -> list[Arrival]:
        with self._lock:
            return list(self._frames[job_id])

    def forget(self, job_id: str) -> None:
        with self._lock:
            self._frames.pop(job_id, None)
            self._events.pop(job_id, None)
            self._terminal.pop(job_id, None)

    def close(self) -> None:
        self._ws.close()
