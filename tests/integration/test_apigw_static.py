"""The console's static files beside the emulated REST API: no key for them, the key for everything else."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from local.apigw import ApiGatewayEmulator, RestApiEmulator
from local.apigw.static import static_site

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

KEY = "static-test-key"
POLICY = "default-src 'none'; script-src 'self'"


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"statusCode": 200, "body": json.dumps({"path": event["path"]})}


@pytest.fixture
def site(tmp_path: Path) -> Iterator[str]:
    root = tmp_path / "site"
    (root / "js").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><title>console</title>")
    (root / "js" / "app.js").write_text("export {};")
    (tmp_path / "secret.txt").write_text("not for the web")
    emulator = ApiGatewayEmulator(
        RestApiEmulator(handler, {KEY: "key1234567"}),
        rest_middlewares=[static_site("/console/", root, lambda: POLICY)],
    )
    urls = emulator.start()
    yield str(urls.rest_url)
    emulator.stop()


def raw_get(base: str, path: str) -> int:
    """A request line exactly as written (requests would normalise the dots away)."""
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    connection.request("GET", path)
    status = connection.getresponse().status
    connection.close()
    return status


def test_the_page_and_its_modules_need_no_key_and_carry_the_policy(site: str) -> None:
    page = requests.get(f"{site}/console/", timeout=10)
    assert page.status_code == 200
    assert page.text.startswith("<!doctype html>")
    assert page.headers["Content-Type"].startswith("text/html")
    assert page.headers["Content-Security-Policy"] == POLICY
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    module = requests.get(f"{site}/console/js/app.js", timeout=10)
    assert module.headers["Content-Type"].startswith("text/javascript")
    assert requests.head(f"{site}/console/index.html", timeout=10).status_code == 200


def test_the_bare_path_redirects_to_the_folder(site: str) -> None:
    answer = requests.get(f"{site}/console", timeout=10, allow_redirects=False)
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/console/"


def test_nothing_outside_the_folder_is_served(site: str) -> None:
    assert raw_get(site, "/console/../secret.txt") == 404
    assert raw_get(site, "/console/%2e%2e/secret.txt") == 404
    assert requests.get(f"{site}/console/missing.js", timeout=10).status_code == 404
    assert requests.post(f"{site}/console/", timeout=10).status_code == 405


def test_every_other_path_is_still_the_keyed_api(site: str) -> None:
    assert requests.get(f"{site}/v1/jobs", timeout=10).status_code == 403
    keyed = requests.get(f"{site}/v1/jobs", headers={"x-api-key": KEY}, timeout=10)
    assert keyed.json() == {"path": "/v1/jobs"}
    # A path that only starts like the console's is the API's too.
    assert requests.get(f"{site}/consoles", timeout=10).status_code == 403
