"""The FastAPI application: routers and the one place errors become HTTP."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from functions.api.problems import install_problem_handlers
from functions.api.routes import (
    docs,
    events,
    health,
    jobs,
    models,
    templates,
    uploads,
    webhooks,
    ws_tokens,
)
from functions.api.routes.health import VERSION

# API Gateway checks the key before the function runs; the document says so, and the docs page's
# "Authorize" button uses it to send the key with each "Try it out".
API_KEY_SCHEME = {"ApiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"}}
# What API Gateway itself answers to a missing or unknown key: its own body, not a problem document.
FORBIDDEN = {
    "description": "No API key, or one API Gateway does not know (answered by API Gateway)",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"message": {"type": "string", "examples": ["Forbidden"]}},
                "required": ["message"],
            }
        }
    },
}


def create_app() -> FastAPI:
    app = FastAPI(
        title="comfy-api-service",
        version=VERSION,
        summary="ComfyUI workflows as an idempotent, observable job API.",
        openapi_url="/v1/openapi.json",
        docs_url=None,  # served by routes.docs, with its files from this service rather than a CDN
        redoc_url=None,
    )
    app.include_router(health.router)
    app.include_router(jobs.router)
    app.include_router(events.router)
    app.include_router(uploads.router)
    app.include_router(templates.router)
    app.include_router(models.router)
    app.include_router(ws_tokens.router)
    app.include_router(webhooks.router)
    app.include_router(docs.router)
    install_problem_handlers(app)
    _declare_api_key(app)
    return app


def _declare_api_key(app: FastAPI) -> None:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            document.setdefault("components", {})["securitySchemes"] = API_KEY_SCHEME
            document["security"] = [{name: []} for name in API_KEY_SCHEME]
            for operations in document["paths"].values():
                for operation in operations.values():
                    operation["responses"].setdefault("403", FORBIDDEN)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
