"""Static files beside the emulated REST API, without an API key: the web console at ``/console/``.

A middleware in front of the REST application, so that every other path still goes through the API's
key check and the Lambda proxy integration unchanged.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Callable
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from shared.console import CONTENT_TYPES


def static_site(prefix: str, directory: Path, policy: Callable[[], str]) -> Middleware:
    """Serve ``directory`` at ``prefix`` (which ends in ``/``) with the security headers of the deployed site.

    ``policy`` gives the Content Security Policy when a page is served, since the origins it names are only
    known once every server listens.
    """
    root = directory.resolve()
    bare = prefix.rstrip("/")

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == bare:
            raise web.HTTPFound(prefix)
        if not request.path.startswith(prefix):
            return await handler(request)
        if request.method not in {"GET", "HEAD"}:
            raise web.HTTPMethodNotAllowed(request.method, ["GET", "HEAD"])
        relative = request.path[len(prefix) :] or "index.html"
        target = (root / relative).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            raise web.HTTPNotFound(text="not found")
        content_type = CONTENT_TYPES.get(target.suffix) or mimetypes.guess_type(target.name)[0]
        return web.FileResponse(
            target,
            headers={
                "Content-Type": content_type or "application/octet-stream",
                "Content-Security-Policy": policy(),
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
                "X-Frame-Options": "DENY",
                "Cache-Control": "no-cache",
            },
        )

    return middleware
