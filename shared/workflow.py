"""Checks that a workflow is a ComfyUI API-format graph, naming the node and input of every fault."""

from __future__ import annotations

import re
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
    """A link is ``[source_node_id, output_index]``. ComfyUI reads every list input as a link, so a list of
    any other shape is a fault (see :func:`validate_workflow`), never a plain value."""
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int)
        and not isinstance(value[1], bool)
    )


# ComfyUI numbers its nodes ("3") and names a group's or subgraph's inner nodes "10:2". Node ids become
# parts of S3 keys and URLs, so nothing that could act as a path (a separator, "." or "..") or a control
# character is allowed, and the length is bounded so that every key stays far under S3's 1024 bytes.
MAX_NODE_ID_LENGTH = 64
_NODE_ID = re.compile(rf"[A-Za-z0-9_:.-]{{1,{MAX_NODE_ID_LENGTH}}}")


def node_id_problem(node_id: str) -> str | None:
    """Why ``node_id`` cannot name a node, or None when it can."""
    if not _NODE_ID.fullmatch(node_id):
        return (
            f"node id {node_id[:80]!r} must be 1 to {MAX_NODE_ID_LENGTH} letters, digits, '_', ':', '.' "
            'or \'-\' (as ComfyUI\'s "3" or "10:2")'
        )
    if node_id in {".", ".."} or ".." in node_id:
        return f"node id {node_id!r} must not be or contain '..' or be '.'"
    return None


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
        problem = node_id_problem(node_id)
        if problem is not None:
            errors.append(FieldError(_pointer(root, node_id), problem, node_id))
        else:
            errors.extend(_node_errors(workflow, root, node_id, node))
    if not errors:
        errors.extend(_cycle_errors(workflow, root))
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
        if not isinstance(value, list):
            continue
        where = here + "/inputs/" + name.replace("~", "~0").replace("/", "~1")
        if not is_link(value):
            errors.append(
                FieldError(
                    where,
                    f"input {name!r} is a list, which ComfyUI reads as a link: it must be "
                    "[source_node_id (a string), output_index (an integer)]",
                    node_id,
                    name,
                )
            )
            continue
        source, index = value
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


def _sources(node: dict[str, Any]) -> list[str]:
    return [value[0] for value in node["inputs"].values() if is_link(value)]


def _cycle_errors(workflow: dict[str, Any], root: str) -> list[FieldError]:
    """One error naming the nodes of a cycle, if the links make one (ComfyUI cannot order such a graph).

    Depth-first over the links with an explicit stack, so a long chain cannot exhaust Python's recursion.
    """
    done: set[str] = set()
    for start in workflow:
        if start in done:
            continue
        path = [start]
        on_path = {start}
        pending = [iter(_sources(workflow[start]))]
        while pending:
            source = next(pending[-1], None)
            if source is None:
                done.add(path[-1])
                on_path.discard(path.pop())
                pending.pop()
            elif source in on_path:
                cycle = path[path.index(source) :]
                # Written in the direction data flows: each node feeds the next.
                ring = " -> ".join(reversed([*cycle, source]))
                return [FieldError(_pointer(root, source), f"the links make a cycle: {ring}", source)]
            elif source not in done:
                path.append(source)
                on_path.add(source)
                pending.append(iter(_sources(workflow[source])))
    return []
