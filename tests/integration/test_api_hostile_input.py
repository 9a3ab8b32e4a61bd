"""Hostile and careless bodies through the API's Lambda handler: a 4xx that says where, never a 5xx."""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest

from tests.integration.conftest import ApiCall


def deep(depth: int) -> str:
    return '{"k":' * depth + "1" + "}" * depth


def test_deep_nesting_is_a_422_with_a_pointer(api: ApiCall, simple_workflow: dict[str, Any]) -> None:
    graph = json.dumps(simple_workflow)
    # 256 to 990 levels were a 500 (pydantic's serializer gives up at depth 255); 10 000 failed the parse.
    for depth in (256, 990, 10_000):
        in_metadata = f'{{"workflow": {graph}, "metadata": {deep(depth)}}}'
        in_input = '{"workflow": {"1": {"class_type": "X", "inputs": {"v": ' + deep(depth) + "}}}}"
        for raw, prefix in ((in_metadata, "/metadata/k/k"), (in_input, "/workflow/1/inputs/v/k")):
            answer = api("POST", "/v1/jobs", raw=raw.encode())
            assert answer.status == 422, answer.body
            assert answer.body["errors"][0]["pointer"].startswith(prefix)
            assert "levels deep" in answer.body["detail"]


def test_non_finite_numbers_are_refused_everywhere(api: ApiCall, simple_workflow: dict[str, Any]) -> None:
    graph = json.dumps(simple_workflow)
    for number in ("NaN", "Infinity", "-Infinity", "1e400"):
        cases = {
            f'{{"workflow": {graph}, "metadata": {{"score": {number}}}}}': "/metadata/score",
            '{"workflow": {"1": {"class_type": "X", "inputs": {"cfg": '
            + number
            + "}}}}": "/workflow/1/inputs/cfg",
            '{"template": "txt2img", "params": {"prompt": "p", "cfg": ' + number + "}}": "/params/cfg",
        }
        for raw, pointer in cases.items():
            answer = api("POST", "/v1/jobs", raw=raw.encode())
            assert answer.status == 422, (raw, answer.body)
            assert answer.body["errors"] == [{"pointer": pointer, "detail": "must be a finite number"}]


def test_metadata_size_counts_utf8_bytes(api: ApiCall, simple_workflow: dict[str, Any]) -> None:
    # 1500 "é" are 3000 bytes of UTF-8 (under 4 KiB), though 9000 as \u escapes.
    fits = api("POST", "/v1/jobs", {"workflow": simple_workflow, "metadata": {"name": "é" * 1500}})
    assert fits.status == 202, fits.body
    assert fits.body["metadata"] == {"name": "é" * 1500}
    over = api("POST", "/v1/jobs", {"workflow": simple_workflow, "metadata": {"name": "é" * 2100}})
    assert over.status == 422
    assert over.body["detail"].startswith("metadata is 4211 bytes")


def test_a_json_body_is_read_without_the_header_or_with_curls_default(
    api: ApiCall, simple_workflow: dict[str, Any]
) -> None:
    for content_type in ("", "application/x-www-form-urlencoded", "application/json"):
        answer = api("POST", "/v1/jobs", {"workflow": simple_workflow}, {"content-type": content_type})
        assert answer.status == 202, (content_type, answer.body)


def test_a_non_json_media_type_is_a_415_naming_the_header(
    api: ApiCall, simple_workflow: dict[str, Any]
) -> None:
    for path, body in (("/v1/jobs", {"workflow": simple_workflow}), ("/v1/uploads", {"content_type": "x"})):
        answer = api("POST", path, body, {"content-type": "text/plain"})
        assert answer.status == 415, answer.body
        assert answer.body["errors"] == [
            {"pointer": "header:Content-Type", "detail": "must be application/json, got 'text/plain'"}
        ]


def test_the_415_and_the_accepted_types_are_in_the_openapi(api: ApiCall) -> None:
    operation = api("GET", "/v1/openapi.json").body["paths"]["/v1/jobs"]["post"]
    assert "415" in operation["responses"]
    assert "Content-Type" in operation["description"]


def test_graphs_comfyui_cannot_run_are_refused_naming_the_node(api: ApiCall) -> None:
    cyclic = {
        "1": {"class_type": "A", "inputs": {"x": ["2", 0]}},
        "2": {"class_type": "B", "inputs": {"y": ["1", 0]}},
    }
    for graph, node_id in [
        (cyclic, "1"),
        ({"1": {"class_type": "A", "inputs": {"x": [1, 0]}}}, "1"),
        ({"../../other/evil": {"class_type": "SaveImage", "inputs": {}}}, "../../other/evil"),
        ({"x" * 1500: {"class_type": "SaveImage", "inputs": {}}}, "x" * 1500),
    ]:
        answer = api("POST", "/v1/jobs", {"workflow": graph})
        assert answer.status == 422, answer.body
        assert answer.body["errors"][0]["node_id"] == node_id


def test_a_route_without_metrics_logs_no_empty_metrics_warning_and_a_submit_publishes(
    api: ApiCall,
    simple_workflow: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert api("GET", "/v1/health").status == 200
        assert api("GET", "/v1/jobs").status == 200
    assert [str(w.message) for w in caught if "metrics" in str(w.message)] == []
    capsys.readouterr()
    assert api("POST", "/v1/jobs", {"workflow": simple_workflow}).status == 202
    published = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [m["JobsSubmitted"] for m in published] == [[1.0]]


def test_the_docs_page_and_its_assets_are_served_from_the_service(api: ApiCall) -> None:
    page = api("GET", "/v1/docs")
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    assert "cdn" not in page.body.lower()
    assert 'url: "openapi.json"' in page.body or "url: 'openapi.json'" in page.body
    for asset, media_type in (("swagger-ui-bundle.js", "text/javascript"), ("swagger-ui.css", "text/css")):
        assert f"docs/{asset}" in page.body
        served = api("GET", f"/v1/docs/{asset}")
        assert served.status == 200 and served.headers["content-type"].startswith(media_type)
        assert len(served.body) > 10_000
    assert api("GET", "/v1/docs/../../etc/passwd").status == 404
    assert api("GET", "/v1/docs/core.py").status == 404
