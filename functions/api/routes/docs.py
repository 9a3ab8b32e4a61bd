"""/v1/docs: Swagger UI for the OpenAPI document, its script and style sheet served from here, not a CDN.

The files come from the ``fastapi-offline`` package (Swagger UI's own dist files); this page and the
OpenAPI document need no API key (``shared.names.PUBLIC_REST_PATHS``).
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from shared.errors import DomainError

router = APIRouter(prefix="/v1/docs", include_in_schema=False)

ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css"}
_STATIC = files("fastapi_offline") / "static"


class NoSuchAsset(DomainError):
    status = 404
    title = "No such file"
    type_slug = "not-found"


@router.get("")
def docs_page(request: Request) -> HTMLResponse:
    app = request.app
    # Relative to the page, so it works under any domain and base path.
    return get_swagger_ui_html(
        openapi_url="openapi.json",
        title=f"{app.title} - API docs",
        swagger_js_url="docs/swagger-ui-bundle.js",
        swagger_css_url="docs/swagger-ui.css",
        swagger_favicon_url="data:,",
        oauth2_redirect_url=None,
        swagger_ui_parameters={"persistAuthorization": True},
    )


@router.get("/{asset}")
def docs_asset(asset: str) -> Response:
    media_type = ASSETS.get(asset)
    if media_type is None:
        raise NoSuchAsset(f"There is no file {asset!r} for the docs page.")
    return Response(
        (_STATIC / asset).read_bytes(),
        media_type=media_type,
        # The files change only with the pinned package, i.e. with a deployment.
        headers={"Cache-Control": "public, max-age=86400"},
    )
