"""The web console's one Content Security Policy, for the local stack and the deployed distribution alike.

The console is static files served beside the REST API (same origin), so its own scripts, styles and
``/v1`` calls are ``'self'``; it also opens the WebSocket API and loads (or uploads) files through the
artifact bucket's presigned URLs, which live on other origins given here.
"""

from __future__ import annotations

from collections.abc import Sequence

CONSOLE_PATH = "/console/"
# The console's files by suffix; module scripts must be served as JavaScript or the browser refuses them.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
}


def content_security_policy(websocket_origins: Sequence[str], bucket_origins: Sequence[str]) -> str:
    """No inline script or style, no plugins, no framing; network only to the API, WebSocket and bucket."""
    websocket = " ".join(websocket_origins)
    bucket = " ".join(bucket_origins)
    directives = [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        # blob: live previews come inline over the WebSocket and are shown from the page's own blobs.
        f"img-src 'self' blob: {bucket}",
        f"media-src {bucket}",
        f"connect-src 'self' {websocket} {bucket}",
        "form-action 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
        "manifest-src 'self'",
    ]
    return "; ".join(directive.strip() for directive in directives)
