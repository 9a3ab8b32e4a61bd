"""Request and response bodies of the REST API; their docstrings and descriptions become the OpenAPI."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.workflow import UI_FORMAT_HINT

EXAMPLE_WORKFLOW: dict[str, Any] = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
    "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "example"}},
}


class JobRequest(BaseModel):
    """A job to run: a ComfyUI workflow in API format."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"workflow": EXAMPLE_WORKFLOW}]}
    )

    workflow: dict[str, Any] = Field(
        description="The graph in ComfyUI's API format: node id -> {class_type, inputs}. "
        "Links are [source_node_id, output_index]."
    )
    metadata: dict[str, Any] | None = Field(
        default=None, description="Your own small JSON object, stored and returned with the job."
    )

    @model_validator(mode="before")
    @classmethod
    def _explain_common_mistakes(cls, data: Any) -> Any:
        if isinstance(data, dict) and "workflow" not in data:
            if isinstance(data.get("nodes"), list) and "links" in data:
                raise ValueError(UI_FORMAT_HINT)
            if "prompt" in data and isinstance(data["prompt"], dict):
                raise ValueError("put the graph under 'workflow', not 'prompt' (ComfyUI's own /prompt body)")
            if data and all(isinstance(v, dict) and "class_type" in v for v in data.values()):
                raise ValueError('the body is a bare graph: send it as {"workflow": <graph>}')
        return data


class Health(BaseModel):
    status: str = "ok"
    version: str
