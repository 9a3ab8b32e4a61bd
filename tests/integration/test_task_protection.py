"""The runner's side of scale-in protection against the local ECS agent endpoint: what it asks, in which
order, and that no failure of the endpoint ever reaches the job."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import requests

from gpu_runner.task_protection import TaskProtection
from local.ecs_agent import EcsAgentServer
from local.processes import free_port
from shared.settings import RunnerSettings


@pytest.fixture
def agent() -> Iterator[EcsAgentServer]:
    server = EcsAgentServer().start()
    yield server
    server.stop()


class Holding:
    """Stands in for the runner's jobs in hand."""

    def __init__(self) -> None:
        self.jobs = 0

    def __call__(self) -> bool:
        return self.jobs > 0


def _asked(agent: EcsAgentServer, task: str) -> list[tuple[bool, int]]:
    return [(e["ProtectionEnabled"], e["ExpiresInMinutes"]) for e in agent.state.history(task)]


def test_protected_while_holding_renewed_per_job_and_released_once_idle(agent: EcsAgentServer) -> None:
    holding = Holding()
    protection = TaskProtection(agent.task_uri("t"), 130, holding)

    async def scenario() -> None:
        await protection.sync()  # idle from the start: nothing to undo, but the state is unknown
        holding.jobs = 1
        await protection.sync()
        holding.jobs = 2  # a prefetched job: the window starts again
        await protection.sync()
        holding.jobs = 1
        await protection.sync()
        holding.jobs = 0
        await protection.sync()
        await protection.sync()  # already off: no call
        await protection.close()

    asyncio.run(scenario())
    assert _asked(agent, "t") == [(False, 120), (True, 130), (True, 130), (True, 130), (False, 120)]
    assert agent.state.get("t")["protection"]["ProtectionEnabled"] is False


def test_racing_calls_leave_the_state_that_holds_last(agent: EcsAgentServer) -> None:
    holding = Holding()
    protection = TaskProtection(agent.task_uri("race"), 60, holding)

    async def scenario() -> None:
        holding.jobs = 1
        # A job ends while the next is taken: whichever call goes last sends the state of that moment.
        first = asyncio.create_task(protection.sync())
        holding.jobs = 0
        second = asyncio.create_task(protection.sync())
        holding.jobs = 1
        await asyncio.gather(first, second)
        await protection.close()

    asyncio.run(scenario())
    assert agent.state.get("race")["protection"]["ProtectionEnabled"] is True


@pytest.mark.parametrize("failure", ["503", "unreachable", "not json"])
def test_a_failing_endpoint_is_logged_never_raised_and_retried_at_the_next_change(
    agent: EcsAgentServer, failure: str
) -> None:
    uri = agent.task_uri("f")
    if failure == "503":
        agent.state.set_fault("f", 503)
    elif failure == "unreachable":
        uri = f"http://127.0.0.1:{free_port()}/api/f"
    else:
        uri = agent.url  # answers 404 with an error document, no "protection"
    holding = Holding()
    protection = TaskProtection(uri, 60, holding)

    async def scenario() -> None:
        holding.jobs = 1
        await protection.sync()
        agent.state.set_fault("f", 0)
        holding.jobs = 0
        await protection.sync()  # the last answer was a failure: off is sent, not assumed
        await protection.close()

    asyncio.run(scenario())
    if failure == "503":
        assert _asked(agent, "f") == [(False, 120)]


def test_no_agent_no_calls() -> None:
    protection = TaskProtection("", 60, lambda: True)
    assert not protection.enabled
    asyncio.run(protection.sync())


def test_the_default_window_outlasts_every_job_in_hand() -> None:
    settings = RunnerSettings()
    longest_in_hand_seconds = (1 + settings.prefetch) * settings.max_run_seconds
    assert settings.task_protection_minutes * 60 > longest_in_hand_seconds


@pytest.mark.parametrize(
    "body", [{}, {"ProtectionEnabled": "yes"}, {"ProtectionEnabled": True, "ExpiresInMinutes": 2881}]
)
def test_the_emulated_agent_refuses_what_the_agent_refuses(agent: EcsAgentServer, body: dict) -> None:
    answer = requests.put(f"{agent.task_uri('bad')}/task-protection/v1/state", json=body, timeout=5)
    assert answer.status_code == 400
    assert answer.json()["error"]["Code"] == "InvalidParameterException"
    assert agent.state.history("bad") == []
