from __future__ import annotations

import json

import pytest

from functions.api.json_body import (
    MAX_JSON_DEPTH,
    UnsupportedMediaType,
    check_json_body,
    check_media_type,
    non_finite_pointers,
    too_deep_at,
)
from shared.errors import InvalidRequest, PayloadTooLarge


def nested(depth: int, key: str = "k") -> str:
    return f'{{"{key}":' * depth + "1" + "}" * depth


def test_the_depth_limit_allows_its_own_depth_and_names_where_it_is_passed() -> None:
    assert too_deep_at(nested(MAX_JSON_DEPTH)) is None
    assert too_deep_at(nested(MAX_JSON_DEPTH + 1)) == "/" + "/".join(["k"] * MAX_JSON_DEPTH)


def test_depth_pointers_follow_keys_and_indexes_and_ignore_brackets_in_strings() -> None:
    text = json.dumps({"a{[": "]}", "metadata": {"x~/y": [0, "[", {"deep": [[[1]]]}]}})
    assert too_deep_at(text, limit=5) == "/metadata/x~0~1y/2/deep/0"
    assert too_deep_at(text, limit=7) is None


@pytest.mark.parametrize("depth", [300, 990, 10_000, 100_000])
def test_any_depth_is_refused_early_with_a_pointer(depth: int) -> None:
    body = ('{"metadata":' + nested(depth) + "}").encode()
    with pytest.raises(InvalidRequest) as caught:
        check_json_body(body, max_bytes=10_000_000)
    assert caught.value.errors[0].pointer.startswith("/metadata/k/k")
    assert f"more than {MAX_JSON_DEPTH} levels" in caught.value.detail


@pytest.mark.parametrize(
    ("text", "pointer"),
    [
        ('{"metadata": {"x": NaN}}', "/metadata/x"),
        ('{"metadata": {"x": -Infinity}}', "/metadata/x"),
        ('{"workflow": {"1": {"inputs": {"cfg": 1e400}}}}', "/workflow/1/inputs/cfg"),
        ('{"params": {"steps": [1, Infinity]}}', "/params/steps/1"),
    ],
)
def test_non_finite_numbers_are_refused_with_their_pointer(text: str, pointer: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        check_json_body(text.encode(), max_bytes=10_000)
    assert [e.pointer for e in caught.value.errors] == [pointer]
    assert caught.value.errors[0].message == "must be a finite number"


def test_finite_numbers_and_malformed_text_pass_to_the_parser() -> None:
    check_json_body(b'{"a": 1e300, "b": -0.0, "c": 12345678901234567890}', max_bytes=100)
    check_json_body(b"{not json", max_bytes=100)
    check_json_body(b"\xff\xfe", max_bytes=100)
    assert non_finite_pointers({"a": [1.5, {"b": 2}]}) == []


def test_size_is_checked_first() -> None:
    with pytest.raises(PayloadTooLarge):
        check_json_body(nested(100).encode(), max_bytes=10)


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/problem+json",
        "application/x-www-form-urlencoded",
    ],
)
def test_json_missing_and_curls_default_media_types_are_read_as_json(content_type: str | None) -> None:
    check_media_type(content_type)


@pytest.mark.parametrize("content_type", ["text/plain", "multipart/form-data; boundary=x", "application/xml"])
def test_other_media_types_are_a_415_naming_the_header(content_type: str) -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        check_media_type(content_type)
    assert caught.value.status == 415
    assert caught.value.errors[0].pointer == "header:Content-Type"
    assert "Content-Type: application/json" in caught.value.detail


@pytest.mark.parametrize(
    "text",
    [
        '"'
        + '\\"' * 200_000,  # an unterminated string of escaped quotes: a regex retrying at each is quadratic
        '{"a\\x": [' + "[" * 40,  # a key with a bad escape
        '{"a": "b' + "[" * 40,  # brackets inside an unterminated string
    ],
)
def test_malformed_text_is_left_to_the_parser(text: str) -> None:
    assert too_deep_at(text) is None
