"""The FastAPI application: routers and the one place errors become HTTP."""

from __future__ import annotations

from fastapi import FastAPI

from functions.api.problems import install_problem_handlers
from functions.api.routes import health, jobs, templates, uploads, ws_tokens
from functions.api.routes.health import VERSION


def create_app() -> FastAPI:
    app = FastAPI(
        title="comfy-api-service",
        version=VERSION,
        summary="ComfyUI workflows as an idempotent, observable job API.",
        openapi_url="/v1/openapi.json",
        docs_url="/v1/docs",
        redoc_url=None,
    )
    app.include_router(health.router)
    app.include_router(jobs.router)
    app.include_router(uploads.router)
    app.include_router(templates.router)
    app.include_router(ws_tokens.router)
    install_problem_handlers(app)
    return app
