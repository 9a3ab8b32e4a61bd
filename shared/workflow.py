"""Checks that a workflow is a ComfyUI API-format graph, naming the node and input of every fault."""

from __future__ import annotations

from typing import Any

from shared.errors import FieldError, InvalidWorkflow

UI_FORMAT_HINT = (
    "This looks like a workflow saved from the ComfyUI editor (it has 'nodes' and 'links' arrays). "
    "Submit the API format instead: in ComfyUI use Workflow > Export (API), or enable dev mode "
    "options and use 'Save (API Format)'."
)


def _pointer(*parts: str) -> str:
    escaped = (p.replace("~", "~0").replace("/", "~1") for p in parts)
    return "/" + "/".join(escaped)


def is_link(value: Any) -> bool:
    """A link is ``[source_node_id, output_index]``; any other two-item list is a plain value."""
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int)
        and not isinstance(value[1], bool)
    )


def validate_workflow(workflow: Any, *, max_nodes: int, base: str = "/workflow") -> dict[str, Any]:
    """Return the graph if it is valid API format; raise :class:`InvalidWorkflow` listing every fault."""
    root = base.lstrip("/")
    if not isinstance(workflow, dict):
        raise InvalidWorkflow(
            "The workflow must be a JSON object mapping node ids to nodes.",
            [FieldError(_pointer(root), f"expected an object, got {type(workflow).__name__}")],
        )
    if isinstance(workflow.get("nodes"), list) and "links" in workflow:
        raise InvalidWorkflow(UI_FORMAT_HINT, [FieldError(_pointer(root, "nodes"), UI_FORMAT_HINT)])
    if not workflow:
        raise InvalidWorkflow("The workflow has no nodes.", [FieldError(_pointer(root), "no nodes")])
    if len(workflow) > max_nodes:
        raise InvalidWorkflow(
            f"The workflow has {len(workflow)} nodes; at most {max_nodes} are allowed.",
            [FieldError(_pointer(root), f"{len(workflow)} nodes is more than the limit of {max_nodes}")],
        )

    errors: list[FieldError] = []
    for node_id, node in workflow.items():
        errors.extend(_node_errors(workflow, root, node_id, node))
    if errors:
        first = errors[0]
        raise InvalidWorkflow(
            f"The workflow has {len(errors)} problem(s); the first: node {first.node_id!r}: {first.message}",
            errors,
        )
    return workflow


def _node_errors(workflow: dict[str, Any], root: str, node_id: str, node: Any) -> list[FieldError]:
    here = _pointer(root, node_id)
    if not isinstance(node, dict):
        return [FieldError(here, f"node must be an object, got {type(node).__name__}", node_id)]
    errors: list[FieldError] = []
    class_type = node.get("class_type")
    if not isinstance(class_type, str) or not class_type.strip():
        errors.append(FieldError(here + "/class_type", "missing or empty 'class_type'", node_id))
    inputs = node.get("inputs")
    if not isinstance(inputs, dict):
        errors.append(FieldError(here + "/inputs", "missing 'inputs' object", node_id))
        return errors
    for name, value in inputs.items():
        if not is_link(value):
            continue
        source, index = value
        where = here + "/inputs/" + name.replace("~", "~0").replace("/", "~1")
        if source not in workflow:
            errors.append(
                FieldError(
                    where, f"input {name!r} links to node {source!r}, which does not exist", node_id, name
                )
            )
        elif index < 0:
            errors.append(FieldError(where, f"input {name!r} has a negative output index", node_id, name))
        elif source == node_id:
            errors.append(FieldError(where, f"input {name!r} links the node to itself", node_id, name))
    return errors
