from __future__ import annotations

from typing import Any

import pytest

from shared.errors import InvalidWorkflow
from shared.workflow import UI_FORMAT_HINT, validate_workflow


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


def test_two_item_lists_that_are_not_links_are_plain_values() -> None:
    graph = {"1": {"class_type": "X", "inputs": {"size": [512, 512], "pair": ["a", "b"]}}}
    assert validate_workflow(graph, max_nodes=10) == graph
