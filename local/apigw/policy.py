"""Decisions API Gateway makes itself: an authorizer's verdict and WebSocket route selection."""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

INVOKE_ACTION = "execute-api:Invoke"


class Verdict(enum.Enum):
    ALLOW = "allow"
    DENY = "deny"  # an explicit Deny, or no Allow that covers the ARN: 403
    INVALID = "invalid"  # a response API Gateway cannot use: 500


@dataclass(frozen=True)
class AuthorizerDecision:
    verdict: Verdict
    # What the following events carry as requestContext.authorizer.
    context: dict[str, Any]
    detail: str = ""


def _wildcard(pattern: str) -> re.Pattern[str]:
    # IAM wildcards: * any run, ? one character; everything else literal.
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.DOTALL)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _matches(patterns: Any, value: str) -> bool:
    return any(isinstance(p, str) and _wildcard(p).fullmatch(value) for p in _as_list(patterns))


def _stringify(value: Any) -> str:
    # API Gateway hands authorizer context values on as strings: true -> "true", 3 -> "3".
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def evaluate_authorizer_response(
    response: Any, method_arn: str, *, integration_latency_ms: int = 0
) -> AuthorizerDecision:
    """Judge a Lambda authorizer's response as API Gateway does: an explicit Deny wins, then any Allow of
    ``execute-api:Invoke`` on the method ARN; context values must be strings, numbers or booleans."""
    if not isinstance(response, Mapping):
        return AuthorizerDecision(Verdict.INVALID, {}, "authorizer response is not an object")
    document = response.get("policyDocument")
    if not isinstance(document, Mapping) or "principalId" not in response:
        return AuthorizerDecision(Verdict.INVALID, {}, "principalId or policyDocument missing")
    raw_context = response.get("context") or {}
    if not isinstance(raw_context, Mapping):
        return AuthorizerDecision(Verdict.INVALID, {}, "context is not an object")
    bad = [k for k, v in raw_context.items() if not isinstance(v, str | int | float | bool)]
    if bad:
        return AuthorizerDecision(Verdict.INVALID, {}, f"context values must be scalars: {bad}")

    allowed = denied = False
    for statement in _as_list(document.get("Statement", [])):
        if not isinstance(statement, Mapping):
            return AuthorizerDecision(Verdict.INVALID, {}, "a policy statement is not an object")
        if not (_matches(statement.get("Action"), INVOKE_ACTION)):
            continue
        if not _matches(statement.get("Resource"), method_arn):
            continue
        effect = statement.get("Effect")
        denied = denied or effect == "Deny"
        allowed = allowed or effect == "Allow"

    context: dict[str, Any] = {
        **{k: _stringify(v) for k, v in raw_context.items()},
        "principalId": str(response["principalId"]),
        "integrationLatency": integration_latency_ms,
    }
    if denied or not allowed:
        return AuthorizerDecision(Verdict.DENY, context, "explicit Deny" if denied else "no Allow")
    return AuthorizerDecision(Verdict.ALLOW, context)


class RouteSelector:
    """Evaluates a ``$request.body.<path>`` route selection expression against a message body."""

    def __init__(self, expression: str) -> None:
        prefix = "$request.body."
        if not expression.startswith(prefix) or len(expression) == len(prefix):
            raise ValueError(f"unsupported route selection expression: {expression!r}")
        self.expression = expression
        self._path = expression[len(prefix) :].split(".")

    def route_key(self, body: str | bytes, route_keys: Collection[str]) -> str | None:
        """The route for a message: its selected value when a route has that key, otherwise ``$default``
        if there is one, otherwise None (API Gateway then answers the client Forbidden)."""
        selected = self._select(body)
        if selected is not None and selected in route_keys and not selected.startswith("$"):
            return selected
        return "$default" if "$default" in route_keys else None

    def _select(self, body: str | bytes) -> str | None:
        if isinstance(body, bytes):
            return None
        try:
            node: Any = json.loads(body)
        except ValueError:
            return None
        for part in self._path:
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node if isinstance(node, str) else None
