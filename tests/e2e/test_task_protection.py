"""Scale-in protection: a runner is protected while it holds a job and unprotected when idle, through the
ECS agent's endpoint (emulated by the local stack), and a failing endpoint never fails a job."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import requests

from tests.e2e.conftest import Stack, start_stack, stop_stack, wait_for

# Three seconds of sampling at the stack's step delay: long enough to look at a running job under load.
STEPS = 30


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """No runner of the stack's own: each test starts one with the task identity it needs."""
    running = start_stack(tmp_path_factory.mktemp("protection-stack"), RUNNERS="0", SIM_STEP_DELAY="0.1")
    yield running
    stop_stack(running)


def _agent(stack: Stack) -> str:
    return str(stack.endpoints["ecs_agent_url"])


def _state(stack: Stack, task: str) -> bool:
    answer = requests.get(f"{_agent(stack)}/api/{task}/task-protection/v1/state", timeout=5).json()
    return bool(answer["protection"]["ProtectionEnabled"])


def _history(stack: Stack, task: str) -> list[dict[str, Any]]:
    answer: list[dict[str, Any]] = requests.get(f"{_agent(stack)}/api/{task}/history", timeout=5).json()
    return answer


def _ms(timestamp: str) -> int:
    return int(datetime.fromisoformat(timestamp).timestamp() * 1000)


def _submit(stack: Stack, steps: int = STEPS) -> str:
    body = {"template": "txt2img", "params": {"prompt": "a lighthouse", "steps": steps}}
    answer = stack.client().post(f"{stack.rest_url}/v1/jobs", json=body, timeout=10)
    assert answer.status_code == 202, answer.text
    return f"{stack.rest_url}{answer.headers['Location']}"


def test_protection_is_on_while_the_runner_holds_a_job_and_off_when_it_is_idle(stack: Stack) -> None:
    task = "protected"
    stack.start_runner(ECS_AGENT_URI=f"{_agent(stack)}/api/{task}")
    try:
        job, seen_running = _run_and_watch(stack, task)
    finally:
        stack.stop_runners()
    assert job["status"] == "succeeded", job
    assert seen_running > 0

    history = _history(stack, task)
    assert [entry["ProtectionEnabled"] for entry in history] == [True, False], (history, job)
    protect, unprotect = history
    # Protected before ComfyUI started the job, unprotected only after it finished.
    assert protect["at_ms"] <= _ms(job["started_at"]), (history, job)
    assert unprotect["at_ms"] >= _ms(job["finished_at"]), (history, job)
    assert protect["ExpiresInMinutes"] >= 60
    assert not _state(stack, task)


def _run_and_watch(stack: Stack, task: str) -> tuple[dict[str, Any], int]:
    """Runs one job; whenever it is seen running on both sides of a look at the agent, it is protected."""
    client = stack.client()
    url = _submit(stack)
    seen_running = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        before = client.get(url, timeout=10).json()["status"]
        protected = _state(stack, task)
        after = client.get(url, timeout=10).json()["status"]
        if before == after == "running":
            assert protected, "a runner holding a job must be protected from scale-in"
            seen_running += 1
        if after in ("succeeded", "failed", "canceled", "expired"):
            break
        time.sleep(0.05)
    return wait_for(client, url), seen_running


def test_a_failing_agent_endpoint_never_fails_a_job(stack: Stack) -> None:
    task = "broken"
    requests.put(f"{_agent(stack)}/faults/{task}", json={"status": 503}, timeout=5).raise_for_status()
    stack.start_runner(ECS_AGENT_URI=f"{_agent(stack)}/api/{task}")
    try:
        job = wait_for(stack.client(), _submit(stack, steps=1), timeout=60)
    finally:
        stack.stop_runners()
    assert job["status"] == "succeeded", job
    assert job["attempts"] == 1
    assert _history(stack, task) == []
    logs = "".join(path.read_text() for path in stack.state_dir.glob("test-runner-*.log"))
    assert "task protection refused" in logs
