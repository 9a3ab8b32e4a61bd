"""A job's graph made ready for a ComfyUI whose folders other tenants share.

Each attempt gets a folder name no other job can guess. Its ``upload://`` inputs are handed to ComfyUI
inside that folder of the input folder; its output nodes save inside that folder of the output folder
and carry the name as an extra input, so ComfyUI's cache never serves them from an earlier job (whose
files are gone once its outputs are in S3). Any other value in a file input is refused here, whatever
the API knew at submit time.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from typing import Any

from gpu_runner.comfy import ComfyClient
from shared.aws.storage import ArtifactStore
from shared.file_inputs import JOB_MARKER_INPUT, FileInputCatalog, file_input_errors
from shared.names import input_key
from shared.uploads import UPLOAD_CONTENT_TYPES, upload_id_of, upload_references

DEFAULT_PREFIX = "ComfyUI"


class InputRejected(Exception):
    """An input the job names cannot be used: a permanent fault of the job."""

    def __init__(self, message: str, node_id: str) -> None:
        super().__init__(message)
        self.node_id = node_id


@dataclass(frozen=True)
class StagedJob:
    graph: dict[str, Any]
    # The attempt's own folder name inside ComfyUI's input and output folders.
    folder: str


def new_job_folder() -> str:
    return f"job-{secrets.token_hex(16)}"


async def stage_job(
    graph: dict[str, Any],
    *,
    owner: str,
    catalog: FileInputCatalog,
    artifacts: ArtifactStore,
    comfy: ComfyClient,
    upload_max_bytes: int,
) -> StagedJob:
    refused = file_input_errors(graph, catalog)
    if refused:
        raise InputRejected("; ".join(error.message for error in refused), str(refused[0].node_id))
    folder = new_job_folder()
    for node_id, name, ref in list(upload_references(graph)):
        graph[node_id]["inputs"][name] = await _stage_upload(
            node_id, name, ref, owner, folder, artifacts, comfy, upload_max_bytes
        )
    confine_outputs(graph, catalog, folder)
    return StagedJob(graph, folder)


async def _stage_upload(
    node_id: str,
    name: str,
    ref: str,
    owner: str,
    folder: str,
    artifacts: ArtifactStore,
    comfy: ComfyClient,
    upload_max_bytes: int,
) -> str:
    """Hands one upload to ComfyUI inside the job's folder; returns the name a loader reads it by."""
    upload_id = upload_id_of(ref)
    where = f"input {name!r} of node {node_id}"
    if upload_id is None:
        raise InputRejected(f"{where}: {ref!r} is not an upload reference", node_id)
    try:
        found = await asyncio.to_thread(
            artifacts.get_with_type, input_key(owner, upload_id), upload_max_bytes
        )
    except ValueError as too_large:
        raise InputRejected(f"{where}: upload {upload_id} is too large: {too_large}", node_id) from None
    if found is None:
        raise InputRejected(f"{where}: upload {upload_id} does not exist", node_id)
    data, content_type = found
    extension = UPLOAD_CONTENT_TYPES.get(content_type.split(";")[0], "")
    return await comfy.upload_image(f"{upload_id}{extension}", data, subfolder=folder)


def confine_outputs(graph: dict[str, Any], catalog: FileInputCatalog, folder: str) -> None:
    """Output nodes save inside ``folder`` and never come from ComfyUI's cache."""
    for node in graph.values():
        if not isinstance(node, dict) or node.get("class_type") not in catalog.output_classes:
            continue
        inputs = node.setdefault("inputs", {})
        inputs[JOB_MARKER_INPUT] = folder
        prefix_input = catalog.prefix_inputs.get(str(node["class_type"]))
        if prefix_input:
            inputs[prefix_input] = f"{folder}/{_leaf(inputs.get(prefix_input))}"


def _leaf(prefix: Any) -> str:
    """The file-name part of a prefix: its folders (or a link feeding it) would lead out of the job's."""
    if not isinstance(prefix, str):
        return DEFAULT_PREFIX
    parts = [part for part in prefix.replace("\\", "/").split("/") if part not in ("", ".", "..")]
    return parts[-1] if parts else DEFAULT_PREFIX
