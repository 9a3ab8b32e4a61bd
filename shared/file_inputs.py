"""Which node inputs name files on ComfyUI's disk, learnt from ComfyUI's own ``/object_info``.

ComfyUI's input, output and temp folders are shared by every tenant on a GPU, and a file input is
resolved against them with few limits: ``"name.png [output]"`` reads the output folder and
``"../output/name.png"`` or an absolute path reads anything. So a file input may only name one of the
job's own ``upload://`` objects; the runner stages it under a name no other job can guess.

The catalog is the compact part of ``/object_info`` this needs: the file inputs of each class, the
output node classes and their ``filename_prefix`` inputs, and the model inputs of each class with the
model folder each reads (``shared.model_refs``). It is versioned JSON so it can grow without breaking
readers: a field a reader does not know is ignored, a field a writer did not know reads as empty.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from shared.errors import FieldError
from shared.uploads import upload_id_of
from shared.workflow import is_link

CATALOG_VERSION = 1
# The input an output node is given a per-job value in, so ComfyUI's cache never serves it from an
# earlier job (its outputs would name files that are gone). ComfyUI folds every literal input into a
# node's cache key but hands a node only the inputs its class declares.
JOB_MARKER_INPUT = "comfy_api_job"
PREFIX_INPUT = "filename_prefix"


@dataclass(frozen=True)
class FileInputCatalog:
    """What one ComfyUI's node classes read from and write to its folders."""

    # class_type -> the names of its inputs that name a file in the input/output/temp folders
    file_inputs: dict[str, tuple[str, ...]] = field(default_factory=dict)
    output_classes: frozenset[str] = frozenset()
    # class_type -> its filename_prefix input, for output nodes that save under a prefix
    prefix_inputs: dict[str, str] = field(default_factory=dict)
    # class_type -> {input: the model folder it lists} ("checkpoints", "loras", ...)
    model_inputs: dict[str, dict[str, str]] = field(default_factory=dict)
    # folder -> the models ComfyUI has without the model cache (baked into its image)
    bundled_models: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def to_json(self) -> bytes:
        body = {
            "v": CATALOG_VERSION,
            "file_inputs": {name: list(inputs) for name, inputs in sorted(self.file_inputs.items())},
            "output_classes": sorted(self.output_classes),
            "prefix_inputs": dict(sorted(self.prefix_inputs.items())),
            "model_inputs": {
                name: dict(sorted(ins.items())) for name, ins in sorted(self.model_inputs.items())
            },
            "bundled_models": {name: sorted(names) for name, names in sorted(self.bundled_models.items())},
        }
        return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> FileInputCatalog:
        body = json.loads(data)
        if not isinstance(body, dict) or body.get("v") != CATALOG_VERSION:
            raise ValueError(f"not a version {CATALOG_VERSION} file-input catalog")
        return cls(
            file_inputs={str(k): tuple(map(str, v)) for k, v in body.get("file_inputs", {}).items()},
            output_classes=frozenset(map(str, body.get("output_classes", []))),
            prefix_inputs={str(k): str(v) for k, v in body.get("prefix_inputs", {}).items()},
            model_inputs={
                str(k): {str(i): str(f) for i, f in v.items()}
                for k, v in body.get("model_inputs", {}).items()
            },
            bundled_models={str(k): tuple(map(str, v)) for k, v in body.get("bundled_models", {}).items()},
        )


def catalog_from_object_info(
    object_info: dict[str, Any], probe_token: str = "", model_probes: dict[str, str] | None = None
) -> FileInputCatalog:
    """The catalog of a ComfyUI's ``/object_info``.

    A file input is one ComfyUI offers an upload for (``image_upload``, ``audio_upload``, ...), one that
    reads a folder (``image_folder``), or a combo listing a folder's files: ``probe_token`` is the name
    stem of files the caller placed in the folders just before asking, so any combo that lists one lists
    a folder. A model input is a combo listing one of ``model_probes`` (probe file name -> the model
    folder, one of ComfyUI's own folder names, it was placed in); the rest of what such a combo lists,
    less the probes, is what ComfyUI has in that folder already.
    """
    file_inputs: dict[str, tuple[str, ...]] = {}
    prefix_inputs: dict[str, str] = {}
    output_classes: set[str] = set()
    model_inputs: dict[str, dict[str, str]] = {}
    listed_in: dict[str, set[str]] = {}
    for class_type, spec in object_info.items():
        if not isinstance(spec, dict):
            continue
        inputs = list(_input_specs(spec.get("input")))
        found = tuple(name for name, value in inputs if _is_file_input(value, probe_token))
        if found:
            file_inputs[class_type] = found
        for name, value in inputs:
            folder, listed = _model_folder(value, model_probes or {})
            if folder:
                model_inputs.setdefault(class_type, {})[name] = folder
                listed_in.setdefault(folder, set()).update(listed)
        if spec.get("output_node"):
            output_classes.add(class_type)
            if any(name == PREFIX_INPUT and _type_of(value) == "STRING" for name, value in inputs):
                prefix_inputs[class_type] = PREFIX_INPUT
    probes = set(model_probes or {})
    bundled = {folder: tuple(sorted(names - probes)) for folder, names in listed_in.items()}
    return FileInputCatalog(file_inputs, frozenset(output_classes), prefix_inputs, model_inputs, bundled)


def _combo_options(value: Any) -> list[Any] | None:
    if not isinstance(value, list) or not value:
        return None
    options = value[1] if len(value) > 1 and isinstance(value[1], dict) else {}
    listed = value[0] if isinstance(value[0], list) else options.get("options")
    return listed if isinstance(listed, list) else None


def _model_folder(value: Any, model_probes: dict[str, str]) -> tuple[str | None, set[str]]:
    listed = _combo_options(value)
    if not listed or not model_probes:
        return None, set()
    names = {item for item in listed if isinstance(item, str)}
    for item in names:
        if item in model_probes:
            return model_probes[item], names
    return None, set()


def _input_specs(sections: Any) -> Iterator[tuple[str, Any]]:
    if not isinstance(sections, dict):
        return
    for section in ("required", "optional"):
        values = sections.get(section)
        if isinstance(values, dict):
            yield from values.items()


def _type_of(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else None


def _is_file_input(value: Any, probe_token: str) -> bool:
    if not isinstance(value, list) or not value:
        return False
    options = value[1] if len(value) > 1 and isinstance(value[1], dict) else {}
    if options.get("image_folder") or any(k.endswith("_upload") and v for k, v in options.items()):
        return True
    if not probe_token:
        return False
    listed = _combo_options(value)
    return listed is not None and any(isinstance(item, str) and probe_token in item for item in listed)


def file_input_errors(
    workflow: dict[str, Any], catalog: FileInputCatalog, pointers: dict[tuple[str, str], str] | None = None
) -> list[FieldError]:
    """Every file input that names something other than an ``upload://`` object, with node and input.

    ``pointers`` maps (node_id, input) to where the value came from, when not ``/workflow/...`` (a
    template's params).
    """
    errors = []
    for node_id, name, value in _file_input_values(workflow, catalog):
        if upload_id_of(value) is not None:
            continue
        pointer = (pointers or {}).get((node_id, name), f"/workflow/{node_id}/inputs/{name}")
        class_type = workflow[node_id].get("class_type")
        if is_link(value):
            why = "is a link; a file input must be an upload:// reference given directly"
        else:
            why = f"is {json.dumps(value)[:120]}; a file input may only name an upload:// object of this job"
        errors.append(
            FieldError(pointer, f"input {name!r} of node {node_id} ({class_type}) {why}", node_id, name)
        )
    return errors


def _file_input_values(workflow: dict[str, Any], catalog: FileInputCatalog) -> Iterable[tuple[str, str, Any]]:
    for node_id, node in workflow.items():
        if not isinstance(node, dict) or not isinstance(node.get("inputs"), dict):
            continue
        for name in catalog.file_inputs.get(str(node.get("class_type")), ()):
            if name in node["inputs"]:
                yield node_id, name, node["inputs"][name]
