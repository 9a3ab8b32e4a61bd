from __future__ import annotations

import pytest

from gpu_runner.progress_gate import ProgressGate
from shared.aws.connections import Subscription
from shared.progress_rate import DEFAULT_PROGRESS_RATE, requested_rate


def test_a_subscribe_without_a_rate_gets_the_default() -> None:
    assert requested_rate({"job_id": "j"}) == DEFAULT_PROGRESS_RATE


@pytest.mark.parametrize("rate", [0, 0.2, 10])
def test_a_rate_in_range_is_taken(rate: float) -> None:
    assert requested_rate({"progress_rate": rate}) == rate


@pytest.mark.parametrize(
    ("rate", "says"), [(-1, "between 0"), (11, "between 0"), ("2", "number"), (True, "number")]
)
def test_a_bad_rate_says_what_is_wrong(rate: object, says: str) -> None:
    problem = requested_rate({"progress_rate": rate})
    assert isinstance(problem, str) and "progress_rate" in problem and says in problem


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_gate_holds_a_subscriber_to_its_rate_and_to_changes() -> None:
    clock = Clock()
    gate = ProgressGate(clock)
    slow, fast = Subscription("slow", progress_rate=0.5), Subscription("fast", progress_rate=10)
    assert gate.due([slow, fast], 10.0) == ["slow", "fast"]
    clock.now += 0.5
    assert gate.due([slow, fast], 10.0) == ["fast"], "the percent did not move: only the ceiling gets it"
    assert gate.due([slow, fast], 12.0) == ["fast"], "slow's two seconds are not up"
    clock.now += 1.6
    assert gate.due([slow, fast], 15.0) == ["slow", "fast"]
    assert gate.due([Subscription("off", progress_rate=0)], 20.0) == []
