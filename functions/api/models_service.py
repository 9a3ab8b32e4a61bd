"""The model library as the API shows it, and the check that a job names only models it has."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from functions.api.context import ApiContext
from shared.errors import FieldError, InvalidRequest
from shared.model_refs import ModelRef, missing_model_errors, name_problem


class InvalidModelCursor(InvalidRequest):
    def __init__(self) -> None:
        super().__init__(
            "The cursor is not one this API gave you for this listing; start again without one.",
            [FieldError("query:cursor", "invalid, or from a listing of another folder")],
        )


def encode_cursor(after: ModelRef, folder: str | None) -> str:
    payload = json.dumps({"f": folder, "a": [after.folder, after.name]}, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, folder: str | None) -> ModelRef:
    try:
        body = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        after_folder, after_name = body["a"]
        ref = ModelRef(str(after_folder), str(after_name))
        valid = (
            body["f"] == folder and (folder is None or ref.folder == folder) and not name_problem(ref.name)
        )
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError):
        valid = False
    if not valid:
        raise InvalidModelCursor()
    return ref


class ModelsService:
    def __init__(self, ctx: ApiContext) -> None:
        self._ctx = ctx

    def page(self, folder: str | None, limit: int, cursor: str | None) -> tuple[list[Any], str | None]:
        after = decode_cursor(cursor, folder) if cursor else None
        assert self._ctx.models is not None, "ApiContext.from_settings makes the library"
        models, last = self._ctx.models.page(limit, after, folder)
        return models, encode_cursor(last, folder) if last is not None else None

    def check(self, workflow: dict[str, Any], pointers: dict[tuple[str, str], str]) -> None:
        """422 naming node, input and the closest names for every model the library lacks; nothing is
        queued. Without a catalog (no runner has said which inputs are models) the runner checks."""
        catalog = self._ctx.catalog.get() if self._ctx.catalog is not None else None
        names = self._ctx.model_names
        if catalog is None or not catalog.model_inputs or names is None:
            return
        errors = missing_model_errors(workflow, catalog, names.has, names.names_in, pointers)
        if errors:
            raise InvalidRequest(
                f"The workflow names {len(errors)} model(s) the model library lacks: {errors[0].message}",
                errors,
            )
