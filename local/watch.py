"""Watches one job over the WebSocket API and draws a progress bar in the terminal."""

from __future__ import annotations

import json
import sys
from typing import Any

import requests
import websocket

BAR_WIDTH = 30


def draw(percent: float, label: str) -> None:
    filled = int(BAR_WIDTH * percent / 100)
    sys.stdout.write(f"\r  [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {percent:5.1f}%  {label:<28}")
    sys.stdout.flush()


def watch_job(session: requests.Session, rest_url: str, job_id: str, timeout: float) -> dict[str, Any]:
    """Follows the job from its snapshot to its terminal job.status frame; returns that frame."""
    token = session.post(f"{rest_url}/v1/ws-tokens", timeout=10)
    token.raise_for_status()
    socket = websocket.create_connection(token.json()["url"], timeout=timeout)
    try:
        socket.send(json.dumps({"action": "subscribe", "job_id": job_id}))
        percent = 0.0
        while True:
            frame = json.loads(socket.recv())
            kind = frame.get("type")
            if kind == "job.snapshot":
                job = frame["job"]
                percent = job["progress"]
                draw(percent, job["status"])
                if job["status"] in {"succeeded", "failed", "canceled", "expired"}:
                    continue  # the terminal job.status frame follows the snapshot
            elif kind == "job.progress":
                percent = frame["percent"]
                step = f"{frame['node_type'] or frame['node_id']} {frame['value']:.0f}/{frame['max']:.0f}"
                draw(percent, step)
            elif kind == "job.status":
                done = frame["status"] in {"succeeded", "failed", "canceled", "expired"}
                draw(100.0 if frame["status"] == "succeeded" else percent, frame["status"])
                if done:
                    sys.stdout.write("\n")
                    return dict(frame)
            elif kind == "error":
                raise RuntimeError(f"WebSocket error: {frame['code']}: {frame['message']}")
    finally:
        socket.close()
