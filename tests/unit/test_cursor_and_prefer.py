from __future__ import annotations

import pytest

from functions.api.cursor import decode_cursor, encode_cursor
from functions.api.deps import prefer_wait
from shared.errors import InvalidRequest

KEY = {"job_id": "j", "owner": "alice", "created_at": 5}


def test_a_cursor_round_trips_for_its_owner_and_filter() -> None:
    cursor = encode_cursor("s", "alice", "queued", KEY)
    assert decode_cursor(("s",), "alice", "queued", cursor) == KEY


@pytest.mark.parametrize(
    ("owner", "status", "mangle"),
    [
        ("bob", "queued", lambda c: c),  # another key replays it
        ("alice", None, lambda c: c),  # another filter
        ("alice", "queued", lambda c: c[:-1] + ("0" if c[-1] != "0" else "1")),  # a signature changed
        ("alice", "queued", lambda c: "e30." + c.split(".")[1]),  # the payload swapped
        ("alice", "queued", lambda c: "garbage"),
    ],
)
def test_a_forged_or_foreign_cursor_is_refused(owner: str, status: str | None, mangle: object) -> None:
    cursor = encode_cursor("s", "alice", "queued", KEY)
    with pytest.raises(InvalidRequest):
        decode_cursor(("s",), owner, status, mangle(cursor))  # type: ignore[operator]


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("wait=5", 5.0),
        ("respond-async, wait=2.5", 2.5),
        ("handling=lenient", None),
        ("wait=0", 0.0),
    ],
)
def test_prefer_wait_is_parsed(header: str | None, seconds: float | None) -> None:
    assert prefer_wait(header) == seconds


@pytest.mark.parametrize("header", ["wait=21", "wait=-1", "wait=soon"])
def test_prefer_wait_out_of_range_is_refused(header: str) -> None:
    with pytest.raises(InvalidRequest, match="Prefer"):
        prefer_wait(header)
