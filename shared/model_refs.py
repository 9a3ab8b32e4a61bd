"""The models a workflow names, found through ComfyUI's own model inputs (``FileInputCatalog.model_inputs``).

A model is named by its folder (one of ComfyUI's folder names: ``checkpoints``, ``loras``, ...) and its
name inside it, as ComfyUI lists it (``sub/name.safetensors`` for one in a subfolder). The API checks
these names against the catalog at submit, the runner makes them local before it submits, and routing
can place a job by them; all three read them here.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from shared.errors import FieldError
from shared.file_inputs import FileInputCatalog
from shared.workflow import is_link

MAX_MODEL_NAME_CHARS = 512
CLOSEST_NAMES = 3


@dataclass(frozen=True, order=True)
class ModelRef:
    """One model: ComfyUI's folder name and the file's name in it."""

    folder: str
    name: str

    def __str__(self) -> str:
        return f"{self.folder}/{self.name}"


@dataclass(frozen=True)
class ModelUse:
    """Where a workflow names a model: the node, its input, and the model."""

    node_id: str
    class_type: str
    input: str
    model: ModelRef


def model_uses(workflow: dict[str, Any], catalog: FileInputCatalog) -> list[ModelUse]:
    """Every literal model name in ``workflow``'s model inputs, in node order. A link (a value another
    node computes) names no model that can be known before the run."""
    uses = []
    for node_id, node in workflow.items():
        if not isinstance(node, dict) or not isinstance(node.get("inputs"), dict):
            continue
        class_type = str(node.get("class_type"))
        for name, folder in catalog.model_inputs.get(class_type, {}).items():
            value = node["inputs"].get(name)
            if isinstance(value, str) and not is_link(value):
                uses.append(ModelUse(str(node_id), class_type, name, ModelRef(folder, value)))
    return uses


def model_refs(workflow: dict[str, Any], catalog: FileInputCatalog) -> list[ModelRef]:
    """The distinct (folder, name) models a workflow names, sorted: what a job needs on local disk."""
    return sorted({use.model for use in model_uses(workflow, catalog)})


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a model's name in its folder, or None. Subfolders are fine; a name that
    leaves its folder, or one S3 and a file system would disagree on, is not."""
    if not name or len(name) > MAX_MODEL_NAME_CHARS:
        return f"a model name has 1 to {MAX_MODEL_NAME_CHARS} characters"
    parts = name.split("/")
    if name.startswith("/") or "\\" in name or any(part in ("", ".", "..") for part in parts):
        return "a model name is a relative path inside its folder: no '..', '.', empty part or backslash"
    if any(ord(char) < 32 for char in name):
        return "a model name has no control characters"
    return None


def closest_names(name: str, known: Iterable[str], count: int = CLOSEST_NAMES) -> list[str]:
    """The known names nearest to ``name`` (by difflib's ratio), best first; none when nothing is near."""
    return difflib.get_close_matches(name, list(known), n=count, cutoff=0.4)


def missing_model_errors(
    workflow: dict[str, Any],
    catalog: FileInputCatalog,
    has: Callable[[ModelRef], bool],
    names_in: Callable[[str], set[str]],
    pointers: dict[tuple[str, str], str] | None = None,
) -> list[FieldError]:
    """A FieldError for every model input naming a model neither in the library (``has``) nor bundled
    with ComfyUI, with the closest names the folder has (``names_in``)."""
    errors = []
    for use in model_uses(workflow, catalog):
        pointer = (pointers or {}).get(
            (use.node_id, use.input), f"/workflow/{use.node_id}/inputs/{use.input}"
        )
        where = f"input {use.input!r} of node {use.node_id} ({use.class_type})"
        problem = name_problem(use.model.name)
        if problem:
            errors.append(FieldError(pointer, f"{where}: {problem}", use.node_id, use.input))
            continue
        bundled = catalog.bundled_models.get(use.model.folder, ())
        if use.model.name in bundled or has(use.model):
            continue
        closest = closest_names(use.model.name, [*names_in(use.model.folder), *bundled])
        hint = (
            f"; closest: {', '.join(closest)}" if closest else f"; {use.model.folder}/ holds no similar name"
        )
        message = f"{where} names {json.dumps(use.model.name)}, which is not in {use.model.folder}/{hint}"
        errors.append(FieldError(pointer, message, use.node_id, use.input, tuple(closest)))
    return errors
