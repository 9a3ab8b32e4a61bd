"""The runner's JSON logger (Powertools), the same format as the Lambdas' logs."""

from __future__ import annotations

from aws_lambda_powertools import Logger

from shared.names import SERVICE_NAME

logger = Logger(service=f"{SERVICE_NAME}-runner")
