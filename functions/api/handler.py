"""The REST API's Lambda entry point: Powertools around Mangum around the FastAPI app."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from mangum import Mangum
from mangum.adapter import DEFAULT_TEXT_MIME_TYPES

from functions.api import snapstart  # noqa: F401  (registers the SnapStart hooks where the runtime has them)
from functions.api.app import create_app
from functions.observability import logger, publish_metrics, tracer

app = create_app()
# Problem documents are JSON too: without this Mangum would base64-encode them.
_asgi = Mangum(
    app,
    lifespan="off",
    api_gateway_base_path="/",
    text_mime_types=[*DEFAULT_TEXT_MIME_TYPES, "application/problem+json"],
)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler
@publish_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _asgi(event, context)  # type: ignore[arg-type]
