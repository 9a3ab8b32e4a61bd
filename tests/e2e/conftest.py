"""End-to-end fixtures: the local stack in its own process (as ``make up`` runs it), and clients of it."""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from local.iam.template import synthesized_template
from tests.conftest import ROOT
from tests.pools_example import POOLS, synth_context_of_example

TERMINAL = {"succeeded", "failed", "canceled", "expired"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "e2e" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


# Every stack enforces the template synthesized with the pools stack's pools: one synthesis serves them
# all (a pool's grants are on its own queues, which a stack without the pool does not have).
SHARED_TEMPLATE_ENV = {"IAM_TEMPLATE_POOLS": POOLS}


@pytest.fixture(scope="session", autouse=True)
def iam_policies() -> None:
    """Synthesizes infra/ once, if it changed, before any stack starts and reads its roles' policies."""
    synthesized_template(context=synth_context_of_example())


@dataclass
class Stack:
    state_dir: Path
    process: subprocess.Popen[bytes]
    endpoints: dict[str, Any]
    runner_env: dict[str, str]
    runners: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def rest_url(self) -> str:
        return str(self.endpoints["rest_url"])

    def client(self, key_index: int = 0) -> requests.Session:
        session = requests.Session()
        session.headers["x-api-key"] = self.endpoints["api_keys"][key_index]
        return session

    def start_runner(self, **env: str) -> subprocess.Popen[bytes]:
        log = (self.state_dir / f"test-runner-{len(self.runners)}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "gpu_runner"],
            cwd=ROOT,
            env={**os.environ, **self.runner_env, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.runners.append(process)
        return process

    def stop_runners(self) -> None:
        """SIGTERM, as ECS stops a task: a runner hands back a message its last long poll took."""
        for runner in self.runners:
            if runner.poll() is None:
                runner.terminate()
        for runner in self.runners:
            try:
                runner.wait(10)
            except subprocess.TimeoutExpired:
                runner.kill()
                runner.wait()
        self.runners.clear()


def start_stack(state_dir: Path, **env: str) -> Stack:
    state_dir.mkdir(parents=True, exist_ok=True)
    log = (state_dir / "stack.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "local", "up"],
        cwd=ROOT,
        env={
            **os.environ,
            "PORT": "0",
            "STATE_DIR": str(state_dir),
            "API_KEYS": "key-alice,key-bob",
            "RUNNERS": "0",
            **SHARED_TEMPLATE_ENV,
            **env,
        },
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    endpoints_file = state_dir / "stack.json"
    # Generous: a stack of several runners, each with its simulator, starts slowly on a busy machine.
    deadline = time.monotonic() + 120
    while not endpoints_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(
                f"the local stack did not start: {(state_dir / 'stack.log').read_text()[-3000:]}"
            )
        time.sleep(0.1)
    endpoints = json.loads(endpoints_file.read_text())
    runner_env = dict(
        line.split("=", 1) for line in (state_dir / "runner.env").read_text().splitlines() if "=" in line
    )
    stack = Stack(state_dir, process, endpoints, runner_env)
    health = stack.client().get(f"{stack.rest_url}/v1/health", timeout=10)
    assert health.status_code == 200
    return stack


# Stacks told to stop, still stopping: waited for once, when the test run ends.
_STOPPING: list[subprocess.Popen[bytes]] = []


def stop_stack(stack: Stack) -> None:
    """SIGTERM, not waited for here: the stack's shutdown (each process it started, then the interpreter
    with moto's state) takes seconds, and overlaps the next module's start instead of adding to it."""
    stack.stop_runners()
    stack.process.terminate()
    _STOPPING.append(stack.process)


@atexit.register
def _wait_for_stopping_stacks() -> None:
    for process in _STOPPING:
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack with one runner, shared by a module's tests."""
    running = start_stack(tmp_path_factory.mktemp("stack"), RUNNERS="1")
    yield running
    stop_stack(running)


def wait_for(
    session: requests.Session, url: str, timeout: float = 30, until: set[str] = TERMINAL
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = session.get(url, timeout=10).json()
        if job["status"] in until or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


def submit(
    session: requests.Session, rest_url: str, workflow: dict[str, Any], **headers: str
) -> requests.Response:
    return session.post(f"{rest_url}/v1/jobs", json={"workflow": workflow}, headers=headers, timeout=10)
