"""IAM's evaluation of identity policies: an explicit Deny wins, then any Allow, else the implicit deny.

Statements are the template's own (resolved to the local account's names): ``Action``/``NotAction``
(case-insensitive, with ``*`` and ``?``), ``Resource``/``NotResource`` and the ``Condition`` operators
IAM documents for strings, ARNs, numbers, booleans and ``Null``, with ``IfExists`` and the
``ForAnyValue``/``ForAllValues`` set qualifiers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

Context = Mapping[str, str | Sequence[str]]


@lru_cache(maxsize=4096)
def _pattern(glob: str, ignore_case: bool) -> re.Pattern[str]:
    # fnmatch would read "[" as a set; IAM's only wildcards are * and ?.
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob)
    return re.compile(f"^{regex}$", re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def matches(glob: str, value: str, *, ignore_case: bool = False) -> bool:
    return _pattern(glob, ignore_case).match(value) is not None


def _listed(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


_COMPARE = {
    "StringEquals": lambda want, got: got == want,
    "StringNotEquals": lambda want, got: got != want,
    "StringEqualsIgnoreCase": lambda want, got: got.lower() == want.lower(),
    "StringNotEqualsIgnoreCase": lambda want, got: got.lower() != want.lower(),
    "StringLike": lambda want, got: matches(want, got),
    "StringNotLike": lambda want, got: not matches(want, got),
    "ArnEquals": lambda want, got: matches(want, got),
    "ArnLike": lambda want, got: matches(want, got),
    "ArnNotEquals": lambda want, got: not matches(want, got),
    "ArnNotLike": lambda want, got: not matches(want, got),
    "Bool": lambda want, got: got.lower() == want.lower(),
    "NumericEquals": lambda want, got: _number(got) == _number(want),
    "NumericNotEquals": lambda want, got: _number(got) != _number(want),
    "NumericLessThan": lambda want, got: (_number(got) or 0) < (_number(want) or 0),
    "NumericLessThanEquals": lambda want, got: (_number(got) or 0) <= (_number(want) or 0),
    "NumericGreaterThan": lambda want, got: (_number(got) or 0) > (_number(want) or 0),
    "NumericGreaterThanEquals": lambda want, got: (_number(got) or 0) >= (_number(want) or 0),
}
_NEGATED = {name for name in _COMPARE if "Not" in name}


def _condition_holds(operator: str, key: str, wanted: Any, context: Context) -> bool:
    qualifier, _, operator = operator.rpartition(":")
    if_exists = operator.endswith("IfExists")
    operator = operator.removesuffix("IfExists")
    present = {k.lower(): v for k, v in context.items()}.get(key.lower())
    if operator == "Null":
        return (present is None) == (str(_listed(wanted)[0]).lower() == "true")
    if operator not in _COMPARE:
        raise ValueError(f"condition operator {operator!r} is not emulated; add it to local/iam/policy.py")
    if present is None:
        return if_exists or (qualifier == "ForAllValues")
    compare = _COMPARE[operator]
    values = [str(v) for v in _listed(wanted)]
    got = [str(v) for v in _listed(present)]

    def one(value: str) -> bool:
        # A negated operator holds when the value differs from every listed one; others when it matches any.
        if operator in _NEGATED:
            return all(compare(want, value) for want in values)
        return any(compare(want, value) for want in values)

    if qualifier == "ForAllValues":
        return all(one(value) for value in got)
    return any(one(value) for value in got)


@dataclass(frozen=True)
class Statement:
    effect: str
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    not_resources: tuple[str, ...] = ()
    conditions: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> Statement:
        def strings(name: str) -> tuple[str, ...]:
            return tuple(str(v) for v in _listed(raw[name])) if name in raw else ()

        return cls(
            effect=str(raw["Effect"]),
            actions=strings("Action"),
            not_actions=strings("NotAction"),
            resources=strings("Resource"),
            not_resources=strings("NotResource"),
            conditions=raw.get("Condition") or {},
        )

    def applies(self, action: str, resource: str, context: Context) -> bool:
        if self.actions and not any(matches(a, action, ignore_case=True) for a in self.actions):
            return False
        if self.not_actions and any(matches(a, action, ignore_case=True) for a in self.not_actions):
            return False
        if self.resources and not any(matches(r, resource) for r in self.resources):
            return False
        if self.not_resources and any(matches(r, resource) for r in self.not_resources):
            return False
        return all(
            _condition_holds(operator, key, wanted, context)
            for operator, keys in self.conditions.items()
            for key, wanted in keys.items()
        )


@dataclass(frozen=True)
class Principal:
    """An identity and the statements of every policy attached to it."""

    name: str
    arn: str
    statements: tuple[Statement, ...]
    # The harness's own identity (it creates the tables and inspects them in tests): no policy applies.
    unrestricted: bool = False

    def allows(self, action: str, resource: str, context: Context | None = None) -> bool:
        if self.unrestricted:
            return True
        context = context or {}
        applying = [s for s in self.statements if s.applies(action, resource, context)]
        if any(s.effect == "Deny" for s in applying):
            return False
        return any(s.effect == "Allow" for s in applying)


def statements_of(documents: Iterable[Mapping[str, Any]]) -> tuple[Statement, ...]:
    return tuple(Statement.parse(raw) for document in documents for raw in _listed(document["Statement"]))
