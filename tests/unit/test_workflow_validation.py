from __future__ import annotations

from typing import Any

import pytest

from shared.errors import InvalidWorkflow
from shared.names import output_key
from shared.workflow import MAX_NODE_ID_LENGTH, UI_FORMAT_HINT, validate_workflow

S3_MAX_KEY_BYTES = 1024


def test_a_valid_api_graph_passes(simple_workflow: dict[str, Any]) -> None:
    assert validate_workflow(simple_workflow, max_nodes=10) is simple_workflow


def test_ui_format_is_refused_with_the_export_hint() -> None:
    with pytest.raises(InvalidWorkflow) as caught:
        validate_workflow({"nodes": [{"id": 1}], "links": [], "version": 0.4}, max_nodes=10)
    assert caught.value.detail == UI_FORMAT_HINT
    assert "Export (API)" in caught.value.detail


def test_a_link_to_a_missing_node_names_the_node_and_input() -> None:
    graph = {"1": {"class_type": "SaveImage", "inputs": {"images": ["7", 0], "filename_prefix": "x"}}}
    with pytest.raises(InvalidWorkflow) as caught:
        validate_workflow(graph, max_nodes=10)
    [error] = caught.value.errors
    assert (error.node_id, error.input, error.pointer) == ("1", "images", "/workflow/1/inputs/images")
    assert "'7'" in error.message


def test_every_fault_is_listed_not_just_the_first() -> None:
    graph: dict[str, Any] = {
        "1": {"inputs": {}},
        "2": {"class_type": "ImageInvert"},
        "3": "not a node",
    }
    with pytest.raises(InvalidWorkflow) as caught:
        validate_workflow(graph, max_nodes=10)
    pointers = {e.pointer for e in caught.value.errors}
    assert pointers == {"/workflow/1/class_type", "/workflow/2/inputs", "/workflow/3"}


def test_node_count_limit() -> None:
    graph = {str(i): {"class_type": "EmptyImage", "inputs": {}} for i in range(11)}
    with pytest.raises(InvalidWorkflow, match="at most 10"):
        validate_workflow(graph, max_nodes=10)


@pytest.mark.parametrize("bad", [[], "graph", 3, None, {}])
def test_non_graphs_are_refused(bad: Any) -> None:
    with pytest.raises(InvalidWorkflow):
        validate_workflow(bad, max_nodes=10)


def test_a_list_that_is_not_a_well_formed_link_is_refused_naming_node_and_input() -> None:
    # ComfyUI reads every list input as a link: [512, 512] or [1, 0] would fail there, not here.
    graph = {
        "1": {"class_type": "X", "inputs": {"size": [512, 512], "pair": ["a", "b"], "n": [1, 0]}},
        "2": {"class_type": "Y", "inputs": {"three": ["1", 0, 0], "flag": ["1", True]}},
    }
    with pytest.raises(InvalidWorkflow) as caught:
        validate_workflow(graph, max_nodes=10)
    assert {(e.node_id, e.input) for e in caught.value.errors} == {
        ("1", "size"),
        ("1", "pair"),
        ("1", "n"),
        ("2", "three"),
        ("2", "flag"),
    }
    assert all("[source_node_id (a string), output_index" in e.message for e in caught.value.errors)


@pytest.mark.parametrize(
    ("links", "cycle"),
    [
        ({"1": "2", "2": "1"}, "1 -> 2 -> 1"),
        ({"1": "3", "2": "1", "3": "2"}, "1 -> 2 -> 3 -> 1"),
    ],
)
def test_a_cycle_is_refused_naming_its_nodes(links: dict[str, str], cycle: str) -> None:
    graph = {n: {"class_type": "X", "inputs": {"in": [src, 0]}} for n, src in links.items()}
    graph["9"] = {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}}
    with pytest.raises(InvalidWorkflow) as caught:
        validate_workflow(graph, max_nodes=10)
    [error] = caught.value.errors
    assert error.message == f"the links make a cycle: {cycle}"
    assert error.node_id == "1" and error.pointer == "/workflow/1"


def test_a_long_chain_is_no_cycle_and_needs_no_recursion() -> None:
    graph: dict[str, Any] = {"0": {"class_type": "EmptyImage", "inputs": {}}}
    graph.update({str(i): {"class_type": "X", "inputs": {"in": [str(i - 1), 0]}} for i in range(1, 5000)})
    assert validate_workflow(graph, max_nodes=5000) is graph


@pytest.mark.parametrize("node_id", ["3", "10:2", "10:2:7", "a-b_c.d", "x" * MAX_NODE_ID_LENGTH])
def test_comfyui_node_ids_are_legal(node_id: str) -> None:
    graph = {node_id: {"class_type": "EmptyImage", "inputs": {}}}
    assert validate_workflow(graph, max_nodes=10) is graph


@pytest.mark.parametrize(
    "node_id",
    ["../../other-owner/evil", "a/b", "a\\b", "..", ".", "a..b", "x" * 1500, "", "new\nline", "tab\t", "é"],
)
def test_node_ids_that_could_act_as_paths_are_refused(node_id: str) -> None:
    graph = {node_id: {"class_type": "EmptyImage", "inputs": {}}}
    with pytest.raises(InvalidWorkflow) as caught:
        validate_workflow(graph, max_nodes=10)
    [error] = caught.value.errors
    assert error.node_id == node_id and "node id" in error.message
    assert len(error.message) < 300  # a 1500-character id is not echoed whole


def test_the_longest_output_key_stays_under_s3s_limit() -> None:
    # An API Gateway key id is 10 characters, a local owner a few more; 255 bytes is a filename's limit.
    key = output_key("o" * 128, "9" * 36, 999, "x" * MAX_NODE_ID_LENGTH, "f" * 255)
    assert len(key.encode()) < S3_MAX_KEY_BYTES
