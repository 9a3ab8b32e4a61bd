"""Lambda's event filtering (the EventBridge pattern syntax) for the patterns the template uses.

Supported: nested objects, lists of exact values, ``{"exists": bool}``, ``{"prefix": s}`` and
``{"anything-but": [...]}``; any other operator is refused loudly rather than matched wrongly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

_MISSING = object()


def matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    for key, condition in pattern.items():
        actual = event.get(key, _MISSING) if isinstance(event, Mapping) else _MISSING
        if isinstance(condition, Mapping):
            if not isinstance(actual, Mapping) or not matches(condition, actual):
                return False
        elif isinstance(condition, list):
            if not any(_value_matches(rule, actual) for rule in condition):
                return False
        else:
            raise ValueError(f"a filter pattern's leaf must be a list, got {condition!r} for {key!r}")
    return True


def _value_matches(rule: Any, actual: Any) -> bool:
    if isinstance(rule, Mapping):
        ((operator, argument),) = rule.items()
        if operator == "exists":
            return (actual is not _MISSING) == bool(argument)
        if actual is _MISSING:
            return False
        if operator == "prefix":
            return isinstance(actual, str) and actual.startswith(argument)
        if operator == "anything-but":
            excluded = argument if isinstance(argument, list) else [argument]
            return actual not in excluded
        raise ValueError(f"the local event filter does not support {operator!r}")
    return actual is not _MISSING and actual == rule


def matches_any(patterns: Sequence[Mapping[str, Any]], event: Mapping[str, Any]) -> bool:
    """Lambda invokes for a record that any of the mapping's filters matches (none: every record)."""
    return not patterns or any(matches(p, event) for p in patterns)
