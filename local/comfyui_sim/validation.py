"""Prompt validation with ComfyUI's error types, messages and node_errors layout.

Values are converted in place (``"8"`` becomes ``8`` for an INT), as ComfyUI does, so the queued and
stored prompt holds the converted values.
"""

from __future__ import annotations

import sys
import traceback
from dataclasses import dataclass, field
from typing import Any

from .nodes import NODE_CLASSES
from .storage import Storage

Reason = dict[str, Any]
Validated = tuple[bool, list[Reason], str]


@dataclass
class ValidationResult:
    ok: bool
    error: dict[str, Any] | None
    outputs: list[str]
    node_errors: dict[str, Any] = field(default_factory=dict)


def _error(kind: str, message: str, details: str = "") -> dict[str, Any]:
    return {"type": kind, "message": message, "details": details, "extra_info": {}}


def _traceback_lines(tb: Any) -> list[str]:
    # Like the recorded transcripts, keep only each entry's 'File "...", line N, in f' line.
    return [entry.splitlines()[0] for entry in traceback.format_tb(tb)]


def types_compatible(received: Any, expected: Any) -> bool:
    if received == expected:
        return True
    if not isinstance(received, str) or not isinstance(expected, str):
        return False
    got = {t.strip() for t in received.split(",")}
    want = {t.strip() for t in expected.split(",")}
    return "*" in got or "*" in want or bool(got & want)


def input_info(types: dict[str, dict[str, Any]], name: str) -> tuple[Any, str | None, dict[str, Any]]:
    for category in ("required", "optional", "hidden"):
        spec = types.get(category, {}).get(name)
        if spec is not None:
            if isinstance(spec, str):
                return spec, category, {}
            return spec[0], category, (spec[1] if len(spec) > 1 else {})
    return None, None, {}


class _Validator:
    def __init__(self, prompt: dict[str, Any], storage: Storage) -> None:
        self.prompt = prompt
        self.storage = storage
        self.validated: dict[str, Validated] = {}
        self.in_progress: set[str] = set()

    def node(self, unique_id: str) -> Validated:
        if unique_id in self.validated:
            return self.validated[unique_id]
        if unique_id in self.in_progress:
            # ComfyUI recurses until Python gives up on a cycle; report the same exception without the wait.
            raise RecursionError("maximum recursion depth exceeded")
        self.in_progress.add(unique_id)
        try:
            result = self._check(unique_id)
        finally:
            self.in_progress.discard(unique_id)
        earlier = self.validated.get(unique_id)
        if earlier is not None and earlier[1] and not result[1]:
            result = earlier  # keep the cycle's RecursionError, recorded while this node was in progress
        self.validated[unique_id] = result
        return result

    def _check(self, unique_id: str) -> Validated:
        inputs: dict[str, Any] = self.prompt[unique_id]["inputs"]
        node = NODE_CLASSES[self.prompt[unique_id]["class_type"]]
        types = node.input_types(self.storage)
        names = [*types.get("required", {}), *types.get("optional", {})]
        errors: list[Reason] = []
        valid = True
        for name in names:
            input_type, category, extra = input_info(types, name)
            if name not in inputs:
                if category == "required":
                    errors.append(
                        {
                            "type": "required_input_missing",
                            "message": "Required input is missing",
                            "details": name,
                            "extra_info": {"input_name": name},
                        }
                    )
                continue
            value = inputs[name]
            config = [input_type, extra]
            if isinstance(value, list):
                linked_ok, reason = self._check_link(name, value, input_type, config)
                if reason is not None:
                    errors.append(reason)
                valid = valid and linked_ok
                continue
            reason = self._check_value(inputs, name, input_type, config, extra, node.validate_args)
            if reason is not None:
                errors.append(reason)
        errors.extend(self._custom(node.validate_args, inputs, node))
        return (not errors and valid, errors, unique_id)

    def _check_link(
        self, name: str, value: list[Any], input_type: Any, config: list[Any]
    ) -> tuple[bool, Reason | None]:
        if len(value) != 2:
            return True, {
                "type": "bad_linked_input",
                "message": "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                "details": name,
                "extra_info": {"input_name": name, "input_config": config, "received_value": value},
            }
        source_id = value[0]
        # A missing source node raises KeyError here, reported as exception_during_validation by the caller.
        source_type = self.prompt[source_id]["class_type"]
        received = NODE_CLASSES[source_type].return_types[value[1]]
        if not types_compatible(received, input_type):
            return True, {
                "type": "return_type_mismatch",
                "message": "Return type mismatch between linked nodes",
                "details": f"{name}, received_type({received}) mismatch input_type({input_type})",
                "extra_info": {
                    "input_name": name,
                    "input_config": config,
                    "received_type": received,
                    "linked_node": value,
                },
            }
        try:
            return self.node(source_id)[0], None
        except Exception as ex:
            _, _, tb = sys.exc_info()
            reason = {
                "type": "exception_during_validation",
                "message": "Exception when validating inner node",
                "details": str(ex),
                "extra_info": {
                    "input_name": name,
                    "input_config": config,
                    "exception_message": str(ex),
                    "exception_type": type(ex).__name__,
                    "traceback": _traceback_lines(tb),
                    "linked_node": value,
                },
            }
            self.validated[source_id] = (False, [reason], source_id)
            return False, None

    @staticmethod
    def _check_value(
        inputs: dict[str, Any],
        name: str,
        input_type: Any,
        config: list[Any],
        extra: dict[str, Any],
        skip_checks: tuple[str, ...],
    ) -> Reason | None:
        value = inputs[name]
        try:
            if isinstance(value, dict) and "__value__" in value:
                value = value["__value__"]
            converters: dict[str, Any] = {"INT": int, "FLOAT": float, "STRING": str, "BOOLEAN": bool}
            if isinstance(input_type, str) and input_type in converters:
                value = converters[input_type](value)
            inputs[name] = value
        except Exception as ex:
            return {
                "type": "invalid_input_type",
                "message": f"Failed to convert an input value to a {input_type} value",
                "details": f"{name}, {value}, {ex}",
                "extra_info": {
                    "input_name": name,
                    "input_config": config,
                    "received_value": value,
                    "exception_message": str(ex),
                },
            }
        if name in skip_checks:
            return None
        bounds = {"input_name": name, "input_config": config, "received_value": value}
        if "min" in extra and value < extra["min"]:
            message = f"Value {value} smaller than min of {extra['min']}"
            return {
                "type": "value_smaller_than_min",
                "message": message,
                "details": name,
                "extra_info": bounds,
            }
        if "max" in extra and value > extra["max"]:
            message = f"Value {value} bigger than max of {extra['max']}"
            return {
                "type": "value_bigger_than_max",
                "message": message,
                "details": name,
                "extra_info": bounds,
            }
        if isinstance(input_type, list) and value not in input_type:
            # Long lists (model files) are summarised rather than echoed back.
            listed = f"(list of length {len(input_type)})" if len(input_type) > 20 else str(input_type)
            return {
                "type": "value_not_in_list",
                "message": "Value not in list",
                "details": f"{name}: '{value}' not in {listed}",
                "extra_info": {
                    "input_name": name,
                    "input_config": None if len(input_type) > 20 else config,
                    "received_value": value,
                },
            }
        return None

    def _custom(self, args: tuple[str, ...], inputs: dict[str, Any], node: Any) -> list[Reason]:
        if not args:
            return []
        values = {x: inputs[x] for x in args if x in inputs and not isinstance(inputs[x], list)}
        verdict = node.validate_inputs(self.storage, values)
        if verdict is True:
            return []
        suffix = "" if verdict is False else f" - {verdict}"
        return [
            {
                "type": "custom_validation_failed",
                "message": "Custom validation failed for node",
                "details": f"{x}{suffix}",
                "extra_info": {"input_name": x},
            }
            for x in values
        ]


def validate_prompt(
    prompt: dict[str, Any], storage: Storage, targets: list[str] | None = None
) -> ValidationResult:
    outputs: list[str] = []
    for node_id, node in prompt.items():
        if "class_type" not in node:
            message = "Cannot execute because a node is missing the class_type property."
            return ValidationResult(False, _error("invalid_prompt", message, f"Node ID '#{node_id}'"), [])
        class_type = node["class_type"]
        node_class = NODE_CLASSES.get(class_type)
        if node_class is None:
            message = f"Cannot execute because node {class_type} does not exist."
            return ValidationResult(False, _error("invalid_prompt", message, f"Node ID '#{node_id}'"), [])
        if node_class.output_node and (targets is None or node_id in targets):
            outputs.append(node_id)
    if not outputs:
        return ValidationResult(False, _error("prompt_no_outputs", "Prompt has no outputs"), [])

    validator = _Validator(prompt, storage)
    good: list[str] = []
    failed: list[tuple[str, list[Reason]]] = []
    node_errors: dict[str, Any] = {}
    for output in outputs:
        try:
            valid, reasons, _ = validator.node(output)
        except Exception as ex:
            _, _, tb = sys.exc_info()
            valid = False
            reasons = [
                {
                    "type": "exception_during_validation",
                    "message": "Exception when validating node",
                    "details": str(ex),
                    "extra_info": {"exception_type": type(ex).__name__, "traceback": _traceback_lines(tb)},
                }
            ]
            validator.validated[output] = (False, reasons, output)
        if valid:
            good.append(output)
            continue
        failed.append((output, reasons))
        # Every node that failed so far is charged with this output, as ComfyUI does.
        for node_id, (ok, node_reasons, _) in validator.validated.items():
            if ok or not node_reasons:
                continue
            entry = node_errors.setdefault(
                node_id,
                {
                    "errors": node_reasons,
                    "dependent_outputs": [],
                    "class_type": prompt[node_id]["class_type"],
                },
            )
            entry["dependent_outputs"].append(output)

    if not good:
        details = "\n".join(f"{r['message']}: {r['details']}" for _, reasons in failed for r in reasons)
        error = _error("prompt_outputs_failed_validation", "Prompt outputs failed validation", details)
        return ValidationResult(False, error, [], node_errors)
    return ValidationResult(True, None, good, node_errors)
