"""A period to total jobs over (``GET /v1/jobs/gpu-cost``): bounded, so one request reads a bounded set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.errors import FieldError, InvalidRequest

MAX_PERIOD = timedelta(days=31)
MAX_TOTALLED_JOBS = 10_000


def _ms(moment: datetime) -> int:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return int(aware.timestamp() * 1000)


def period_ms(since: datetime, until: datetime | None, now_ms: int) -> tuple[int, int]:
    """[since, until) in epoch milliseconds; a time without a zone is UTC."""
    start, end = _ms(since), _ms(until) if until is not None else now_ms
    if end <= start:
        raise InvalidRequest(
            "The period ends before it starts: 'until' must be after 'since'.",
            [FieldError("query:until", "must be after since")],
        )
    if end - start > MAX_PERIOD.total_seconds() * 1000:
        raise InvalidRequest(
            f"The period is longer than {MAX_PERIOD.days} days; total it a month at a time.",
            [FieldError("query:since", f"at most {MAX_PERIOD.days} days before until")],
        )
    return start, end
