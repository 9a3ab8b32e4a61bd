"""The EC2 instance metadata service, as much of it as a Spot runner reads: IMDSv2 tokens and the
interruption notice (``/latest/meta-data/spot/instance-action``: 404 until EC2 announces one).

One per simulated instance. ``announce_interruption()`` (or ``POST /local/spot-interruption``) makes the
notice appear, two minutes ahead as EC2 gives it; a GET without a valid token is a 401, as with IMDSv2
required.
"""

from __future__ import annotations

import json
import secrets
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN_TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
NOTICE_SECONDS = 120


class InstanceMetadata:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._tokens: set[str] = set()
        self.notice: dict[str, str] | None = None
        self.notice_reads = 0
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, status: int, body: str = "", content_type: str = "text/plain") -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_PUT(self) -> None:
                if self.path != "/latest/api/token":
                    return self._answer(404)
                ttl = self.headers.get(TOKEN_TTL_HEADER, "")
                if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                    return self._answer(400)
                token = secrets.token_urlsafe(24)
                service._tokens.add(token)
                return self._answer(200, token)

            def do_GET(self) -> None:
                if self.headers.get(TOKEN_HEADER) not in service._tokens:
                    return self._answer(401)
                if self.path != "/latest/meta-data/spot/instance-action":
                    return self._answer(404)
                service.notice_reads += 1
                if service.notice is None:
                    return self._answer(404)
                return self._answer(200, json.dumps(service.notice), "application/json")

            def do_POST(self) -> None:
                if self.path != "/local/spot-interruption":
                    return self._answer(404)
                service.announce_interruption()
                return self._answer(204)

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="imds", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> InstanceMetadata:
        self._thread.start()
        return self

    def announce_interruption(self) -> None:
        when = datetime.now(UTC) + timedelta(seconds=NOTICE_SECONDS)
        self.notice = {"action": "terminate", "time": when.strftime("%Y-%m-%dT%H:%M:%SZ")}

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
