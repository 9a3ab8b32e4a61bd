"""Powertools Logger, Tracer and Metrics, one of each per process, shared by every function."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

from shared.names import METRICS_NAMESPACE, SERVICE_NAME

logger = Logger(service=SERVICE_NAME)
tracer = Tracer(service=SERVICE_NAME)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)
