"""`Prefer: wait` is shortened to the deployment's bound, so waiting requests fit in the API's concurrency."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from functions.api.deps import prefer_wait
from shared.errors import InvalidRequest
from shared.settings import ApiSettings


def _bounded(seconds: int) -> Any:
    return SimpleNamespace(settings=ApiSettings(prefer_wait_max_seconds=seconds))


@pytest.mark.parametrize(("header", "applied"), [("wait=15", 5.0), ("wait=5", 5.0), ("wait=2.5", 2.5)])
def test_a_longer_wait_is_shortened_to_the_bound(header: str, applied: float) -> None:
    assert prefer_wait(header, _bounded(5)) == applied


def test_a_wait_outside_the_contract_is_still_refused() -> None:
    with pytest.raises(InvalidRequest):
        prefer_wait("wait=21", _bounded(5))


def test_the_bound_is_at_most_the_contracts_twenty_seconds() -> None:
    assert ApiSettings().prefer_wait_max_seconds == 20
    with pytest.raises(ValueError, match="prefer_wait_max_seconds"):
        ApiSettings(prefer_wait_max_seconds=21)
