"""Templates: an API-format workflow plus typed parameters, each bound to one or more (node, input) places.

Templates are JSON files in the ``templates/`` folder, which platform teams extend and which ships with
the deployment. Parameters use a small subset of JSON Schema (type, minimum, maximum, multipleOf,
minLength, maxLength, enum, default, and ``format: upload`` for an ``upload://`` reference), checked here
without a schema library so the Lambda stays small.
"""

from __future__ import annotations

import copy
import json
import math
import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from shared.errors import FieldError, InvalidRequest
from shared.uploads import UPLOAD_SCHEME

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
_SCHEMA_KEYS = (
    "type",
    "description",
    "default",
    "minimum",
    "maximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "enum",
)
_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


class UnknownTemplate(InvalidRequest):
    status = 404
    title = "No such template"
    type_slug = "template-not-found"


@dataclass(frozen=True)
class Parameter:
    name: str
    spec: dict[str, Any]
    bind: tuple[tuple[str, str], ...]

    def schema(self) -> dict[str, Any]:
        schema = {key: self.spec[key] for key in _SCHEMA_KEYS if key in self.spec}
        if self.spec.get("format") == "upload":
            schema["pattern"] = f"^{UPLOAD_SCHEME}[A-Za-z0-9_-]+$"
        return schema

    def problems(self, value: Any) -> list[str]:
        """Everything wrong with ``value``, in words a caller can act on."""
        kind = self.spec["type"]
        if (isinstance(value, bool) and kind != "boolean") or not isinstance(value, _TYPES[kind]):
            return [f"must be {'an' if kind[0] in 'aeiou' else 'a'} {kind}, got {type(value).__name__}"]
        if isinstance(value, float) and not math.isfinite(value):
            return ["must be a finite number"]  # NaN compares false with every bound
        found = []
        if "enum" in self.spec and value not in self.spec["enum"]:
            found.append(f"must be one of {', '.join(map(str, self.spec['enum']))}")
        if "minimum" in self.spec and value < self.spec["minimum"]:
            found.append(f"must be at least {self.spec['minimum']}")
        if "maximum" in self.spec and value > self.spec["maximum"]:
            found.append(f"must be at most {self.spec['maximum']}")
        if "multipleOf" in self.spec and value % self.spec["multipleOf"]:
            found.append(f"must be a multiple of {self.spec['multipleOf']}")
        if "minLength" in self.spec and len(str(value)) < self.spec["minLength"]:
            found.append(f"must be at least {self.spec['minLength']} characters")
        if "maxLength" in self.spec and len(str(value)) > self.spec["maxLength"]:
            found.append(f"must be at most {self.spec['maxLength']} characters")
        if self.spec.get("format") == "upload" and not str(value).startswith(UPLOAD_SCHEME):
            found.append(f"must be an upload reference, {UPLOAD_SCHEME}<upload_id>, from POST /v1/uploads")
        return found


@dataclass(frozen=True)
class Template:
    name: str
    description: str
    workflow: dict[str, Any]
    parameters: tuple[Parameter, ...]
    required: tuple[str, ...]

    def schema(self) -> dict[str, Any]:
        """The JSON Schema of ``params``."""
        return {
            "type": "object",
            "properties": {p.name: p.schema() for p in self.parameters},
            "required": list(self.required),
            "additionalProperties": False,
        }

    def render(
        self, params: dict[str, Any], rng: random.Random | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The graph with every parameter in place, and the params used (defaults and any chosen seed)."""
        errors = [
            FieldError(f"/params/{name}", "no such parameter in template " + repr(self.name))
            for name in params
            if name not in {p.name for p in self.parameters}
        ]
        resolved: dict[str, Any] = {}
        for parameter in self.parameters:
            where = f"/params/{parameter.name}"
            if parameter.name in params:
                value = params[parameter.name]
            elif "default" in parameter.spec:
                value = parameter.spec["default"]
            elif parameter.name == "seed":
                value = (rng or random.SystemRandom()).randrange(0, 2**53)
            elif parameter.name in self.required:
                errors.append(FieldError(where, "is required"))
                continue
            else:
                continue
            errors += [FieldError(where, problem) for problem in parameter.problems(value)]
            resolved[parameter.name] = value
        if errors:
            detail = "; ".join(f"{e.pointer.removeprefix('/params/')} {e.message}" for e in errors)
            raise InvalidRequest(f"The parameters do not fit template {self.name!r}: {detail}", errors)
        graph = copy.deepcopy(self.workflow)
        for parameter in self.parameters:
            if parameter.name in resolved:
                for node_id, input_name in parameter.bind:
                    graph[node_id]["inputs"][input_name] = resolved[parameter.name]
        return graph, resolved


def parse_template(document: dict[str, Any]) -> Template:
    workflow = document["workflow"]
    parameters = []
    for name, spec in document["parameters"].items():
        if spec.get("type") not in _TYPES:
            raise ValueError(f"template {document['name']}: parameter {name} has no supported type")
        bind = tuple((str(node), str(field)) for node, field in spec["bind"])
        for node, field in bind:
            if node not in workflow or field not in workflow[node].get("inputs", {}):
                raise ValueError(
                    f"template {document['name']}: {name} binds to {node}.{field}, which does not exist"
                )
        parameters.append(Parameter(name, spec, bind))
    return Template(
        document["name"],
        document.get("description", ""),
        workflow,
        tuple(parameters),
        tuple(document.get("required", ())),
    )


@lru_cache(maxsize=4)
def load_templates(directory: Path = TEMPLATES_DIR) -> dict[str, Template]:
    templates = {}
    for path in sorted(directory.glob("*.json")):
        template = parse_template(json.loads(path.read_text()))
        templates[template.name] = template
    return templates


def get_template(name: str, directory: Path = TEMPLATES_DIR) -> Template:
    templates = load_templates(directory)
    if name not in templates:
        known = ", ".join(sorted(templates)) or "none"
        raise UnknownTemplate(
            f"There is no template {name!r}; the templates are: {known}.",
            [FieldError("/template", f"unknown template {name!r}")],
        )
    return templates[name]
