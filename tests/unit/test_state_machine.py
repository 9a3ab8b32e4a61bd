from __future__ import annotations

import pytest

from shared.models import TERMINAL_STATUSES, JobStatus
from shared.state import can_transition, sources_of


@pytest.mark.parametrize("terminal", sorted(TERMINAL_STATUSES))
def test_terminal_states_never_change_again(terminal: JobStatus) -> None:
    for target in JobStatus:
        assert not can_transition(terminal, target)


def test_the_design_transitions_exist() -> None:
    assert can_transition(JobStatus.QUEUED, JobStatus.RUNNING)
    assert can_transition(JobStatus.QUEUED, JobStatus.CANCELED)
    assert can_transition(JobStatus.QUEUED, JobStatus.EXPIRED)
    for end in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED):
        assert can_transition(JobStatus.RUNNING, end)


def test_a_running_job_cannot_expire_or_go_back_to_queued() -> None:
    assert not can_transition(JobStatus.RUNNING, JobStatus.EXPIRED)
    assert not can_transition(JobStatus.RUNNING, JobStatus.QUEUED)


def test_sources_are_what_conditional_writes_allow() -> None:
    assert sources_of(JobStatus.EXPIRED) == {JobStatus.QUEUED}
    assert sources_of(JobStatus.RUNNING) == {JobStatus.QUEUED}
    assert sources_of(JobStatus.SUCCEEDED) == {JobStatus.QUEUED, JobStatus.RUNNING}
