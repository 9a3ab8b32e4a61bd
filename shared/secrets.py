"""The WebSocket token secret: a literal locally, a Secrets Manager secret in AWS (cached 5 minutes)."""

from __future__ import annotations

from aws_lambda_powertools.utilities import parameters


def token_secret(literal: str, secret_arn: str) -> str:
    if literal:
        return literal
    if not secret_arn:
        return ""
    return str(parameters.get_secret(secret_arn, max_age=300))
