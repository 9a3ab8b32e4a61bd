"""Request and response bodies of the REST API; their docstrings and descriptions become the OpenAPI."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from functions.api.webhook_schemas import JobWebhookRequest
from shared.templates import load_templates
from shared.uploads import UPLOAD_CONTENT_TYPES
from shared.views import JobView
from shared.workflow import UI_FORMAT_HINT

EXAMPLE_WORKFLOW: dict[str, Any] = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
    "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "example"}},
}


class JobRequest(BaseModel):
    """A job to run: a raw ComfyUI workflow in API format, or a template and its parameters."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"workflow": EXAMPLE_WORKFLOW},
                {"template": "txt2img", "params": {"prompt": "a lighthouse at dawn", "steps": 20}},
            ]
        },
    )

    workflow: dict[str, Any] | None = Field(
        default=None,
        description="The graph in ComfyUI's API format: node id -> {class_type, inputs}. "
        "Links are [source_node_id, output_index]. An input may name an uploaded file as upload://<upload_id>.",
    )
    template: str | None = Field(
        default=None,
        description="The name of a template (GET /v1/templates)",
        json_schema_extra={"enum": list[JsonValue](load_templates())},
    )
    params: dict[str, Any] | None = Field(default=None, description="The template's parameters")
    metadata: dict[str, Any] | None = Field(
        default=None, description="Your own small JSON object, stored and returned with the job."
    )
    pool: str | None = Field(
        default=None,
        min_length=1,
        max_length=20,
        description="The runner pool to run in; by default the pool that serves the template or the "
        "models the workflow names, else the default pool. An unknown pool, or one with no runners, "
        "is a 422.",
    )
    webhook: JobWebhookRequest | None = Field(
        default=None, description="Also send this job's events here (docs/webhooks.md)"
    )

    @model_validator(mode="before")
    @classmethod
    def _explain_common_mistakes(cls, data: Any) -> Any:
        if isinstance(data, dict) and "workflow" not in data and "template" not in data:
            if isinstance(data.get("nodes"), list) and "links" in data:
                raise ValueError(UI_FORMAT_HINT)
            if "prompt" in data and isinstance(data["prompt"], dict):
                raise ValueError("put the graph under 'workflow', not 'prompt' (ComfyUI's own /prompt body)")
            if data and all(isinstance(v, dict) and "class_type" in v for v in data.values()):
                raise ValueError('the body is a bare graph: send it as {"workflow": <graph>}')
            raise ValueError("give either 'workflow' (an API-format graph) or 'template' and 'params'")
        return data

    @model_validator(mode="after")
    def _one_source(self) -> JobRequest:
        if self.workflow is not None and self.template is not None:
            raise ValueError("give either 'workflow' or 'template', not both")
        if self.params is not None and self.template is None:
            raise ValueError("'params' go with a 'template'")
        return self


class JobList(BaseModel):
    """A page of the caller's jobs, newest first."""

    items: list[JobView]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last page")


class UploadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content_type: str = Field(
        description="The file's media type",
        json_schema_extra={"enum": list[JsonValue](sorted(UPLOAD_CONTENT_TYPES))},
    )
    filename: str | None = Field(default=None, max_length=255, description="The file's name, for reference")


class UploadTicket(BaseModel):
    """Where to POST the file (a form upload); then name it in a job as ``ref``."""

    upload_id: str
    ref: str = Field(description="upload://<upload_id>: the value for a workflow input or template param")
    url: str = Field(description="The URL to POST a multipart/form-data upload to")
    method: str = "POST"
    fields: dict[str, str] = Field(
        description="Form fields to send as they are, before the file itself in a last field named `file`"
    )
    max_bytes: int = Field(description="The storage refuses a larger file (HTTP 400, EntityTooLarge)")
    expires_at: datetime


class TemplateInfo(BaseModel):
    name: str
    description: str
    parameters: dict[str, Any] = Field(description="The JSON Schema of the template's params")


class TemplateList(BaseModel):
    items: list[TemplateInfo]


class Health(BaseModel):
    status: str = "ok"
    version: str


class ModelInfo(BaseModel):
    """One model of the library: name it in a model input of its folder's loaders."""

    folder: str = Field(description="ComfyUI's folder: checkpoints, loras, vae, controlnet, ...")
    name: str = Field(description="The value a loader's input takes, e.g. ckpt_name or lora_name")
    size: int = Field(description="Bytes")
    sha256: str | None = Field(description="The SHA-256 runners verify after fetching; null when unknown")
    updated_at: datetime


class ModelList(BaseModel):
    """A page of the model library, in folder and name order."""

    items: list[ModelInfo]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last page")
