"""How ComfyUI's refusals and failures become a job's error.

Every node error ComfyUI reported is named, with its node id and type. Nothing a client sees names a
path on the server: paths in messages are cut to their file name, and a traceback keeps only each
frame's file name, line and function (enough to tell which node module failed, nothing of the server's
layout or source). The runner's log keeps ComfyUI's full text.
"""

from __future__ import annotations

import re
from typing import Any

from gpu_runner.comfy import ComfyRejected
from gpu_runner.log import logger
from shared.models import ErrorCode, JobError

# An absolute POSIX or Windows path (not the path of a URL): keep only its last component.
_POSIX_PATH = re.compile(r"(?<![\w.:/~-])(?:/[^\s\"'<>:/\\|,;()\[\]]+)+/([^\s\"'<>:/\\|,;()\[\]]*)")
_WINDOWS_PATH = re.compile(r"\b[A-Za-z]:\\(?:[^\s\"'<>:\\|]+\\)+([^\s\"'<>:\\|]*)")
_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<function>\S+)')
_UNKNOWN_NODE = re.compile(r"Node ID '#([^']+)'")


def without_paths(text: str) -> str:
    return _WINDOWS_PATH.sub(r"\1", _POSIX_PATH.sub(r"\1", text))


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return without_paths(value)
    if isinstance(value, list):
        return [_clean(item) for item in value]
    if isinstance(value, dict):
        return {key: _clean(item) for key, item in value.items()}
    return value


def short_traceback(frames: Any) -> list[str]:
    """``File "nodes_mask.py", line 137, in image_to_mask`` per frame: no directories, no source lines."""
    short: list[str] = []
    for frame in frames if isinstance(frames, list) else []:
        found = _FRAME.search(str(frame))
        if found:
            name = re.split(r"[/\\]", found["file"])[-1]
            short.append(f'File "{name}", line {found["line"]}, in {found["function"]}')
    return short


def _node_type(graph: dict[str, Any], node_id: str | None) -> str | None:
    node = graph.get(node_id) if node_id is not None else None
    class_type = node.get("class_type") if isinstance(node, dict) else None
    return class_type if isinstance(class_type, str) else None


def _reason(error: dict[str, Any]) -> str:
    message = str(error.get("message") or "invalid")
    details = error.get("details")
    return f"{message}: {details}" if details else message


def rejection_error(rejected: ComfyRejected, graph: dict[str, Any]) -> JobError:
    """A refusal from /prompt, whole (HTTP 400) or partial (200 with node errors, already withdrawn)."""
    listed: list[dict[str, Any]] = []
    for node_id, node_error in (rejected.node_errors or {}).items():
        node_type = node_error.get("class_type") or _node_type(graph, str(node_id))
        for error in node_error.get("errors") or [{}]:
            listed.append(
                {
                    "node_id": str(node_id),
                    "node_type": node_type,
                    "type": error.get("type"),
                    "message": without_paths(_reason(error)),
                }
            )
    details: dict[str, Any] = {"error": _clean(rejected.error), "node_errors": _clean(rejected.node_errors)}
    if not listed:
        # invalid_prompt (an unknown or missing class_type) names its node only in details: "Node ID '#1'".
        found = _UNKNOWN_NODE.search(str(rejected.error.get("details", "")))
        unknown = found.group(1) if found else None
        return JobError(
            code=ErrorCode.VALIDATION_ERROR,
            message=without_paths(str(rejected.error.get("message") or "ComfyUI rejected the workflow")),
            node_id=unknown,
            node_type=_node_type(graph, unknown),
            details=details,
        )
    first = listed[0]
    if len(listed) == 1:
        message = first["message"]
    else:
        message = "; ".join(f"node {e['node_id']} ({e['node_type']}): {e['message']}" for e in listed)
    if rejected.partial:
        message = f"some output nodes failed validation, so none was run: {message}"
    details["errors"] = listed
    return JobError(
        code=ErrorCode.VALIDATION_ERROR,
        message=message,
        node_id=first["node_id"],
        node_type=first["node_type"],
        details=details,
    )


def execution_error(data: dict[str, Any], job_id: str) -> JobError:
    """An ``execution_error`` frame as a client may see it; the full frame goes to the runner's log."""
    logger.warning(
        "ComfyUI execution error",
        extra={
            "job_id": job_id,
            "node_id": data.get("node_id"),
            "node_type": data.get("node_type"),
            "exception_type": data.get("exception_type"),
            "exception_message": data.get("exception_message"),
            "traceback": data.get("traceback"),
        },
    )
    return JobError(
        code=ErrorCode.EXECUTION_ERROR,
        message=without_paths(str(data.get("exception_message") or "the workflow failed")).strip(),
        node_id=str(data["node_id"]) if data.get("node_id") is not None else None,
        node_type=data.get("node_type"),
        details={
            "exception_type": data.get("exception_type"),
            "traceback": short_traceback(data.get("traceback")),
        },
    )
