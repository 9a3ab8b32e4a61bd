"""Helpers for the reliability tests: direct access to the stack's AWS, and a ComfyUI simulator of their own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import requests
import websocket

from gpu_runner.job import prompt_id_for
from local.processes import free_port, start_simulator, stop
from shared.aws.jobs import JobStore
from shared.aws.storage import ArtifactStore
from shared.models import Job
from shared.names import job_outputs_prefix
from tests.e2e.conftest import TERMINAL, Stack


@dataclass
class StackAws:
    store: JobStore
    artifacts: ArtifactStore
    sqs: Any
    queue_url: str

    @classmethod
    def of(cls, stack: Stack) -> StackAws:
        session = boto3.session.Session(
            aws_access_key_id="local", aws_secret_access_key="local", region_name="us-east-1"
        )
        endpoint = stack.endpoints["aws_endpoint"]
        env = stack.runner_env
        return cls(
            JobStore(
                session.client("dynamodb", endpoint_url=endpoint),
                env["JOBS_TABLE_NAME"],
            ),
            ArtifactStore(session.client("s3", endpoint_url=endpoint), env["BUCKET_NAME"]),
            session.client("sqs", endpoint_url=endpoint),
            env["JOBS_QUEUE_URL"],
        )

    def job(self, job_id: str) -> Job:
        job = self.store.get(job_id)
        assert job is not None
        return job

    def stored_outputs(self, job: Job) -> list[str]:
        prefix = job_outputs_prefix(job.owner, job.job_id)
        listing = self.artifacts._s3.list_objects_v2(Bucket=self.artifacts._bucket, Prefix=prefix)
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def send(self, job_id: str) -> None:
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps({"v": 1, "job_id": job_id}))


def wait_until(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Simulator:
    """A ComfyUI simulator a test can kill, freeze and restart on the same port."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Simulator:
        self.process = start_simulator(self.port, 0.05, self.data_dir, self.data_dir / "sim.log")
        return self

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def freeze(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None:
            self.thaw()
            stop(self.process)

    def ran(self, job_id: str, attempt: int) -> bool:
        """Whether ComfyUI ever saw the prompt of that attempt (in its history or its queue)."""
        prompt_id = prompt_id_for(job_id, attempt)
        history = requests.get(f"{self.url}/history/{prompt_id}", timeout=5).json()
        queue = requests.get(f"{self.url}/queue", timeout=5).json()
        queued = {item[1] for item in queue["queue_running"] + queue["queue_pending"]}
        return bool(history) or prompt_id in queued


class Subscriber:
    """A WebSocket client subscribed to one job, keeping every frame it receives, in order."""

    def __init__(self, stack: Stack, job_id: str) -> None:
        token = stack.client().post(f"{stack.rest_url}/v1/ws-tokens", timeout=10)
        assert token.status_code == 201
        self.socket = websocket.create_connection(token.json()["url"], timeout=60)
        self.socket.send(json.dumps({"action": "subscribe", "job_id": job_id}))
        self.frames: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            while raw := self.socket.recv():
                self.frames.append(json.loads(raw))
        except (websocket.WebSocketException, OSError):
            return

    def terminal_index(self) -> int | None:
        for index, frame in enumerate(self.frames):
            if frame["type"] == "job.status" and frame["status"] in TERMINAL:
                return index
        return None

    def close(self) -> list[dict[str, Any]]:
        self.socket.close()
        self._reader.join(5)
        return self.frames


def runner_log(stack: Stack, index: int) -> str:
    return (stack.state_dir / f"test-runner-{index}.log").read_text(errors="replace")
