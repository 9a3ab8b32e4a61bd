"""What every simulated node class declares, mirroring the attributes ComfyUI reads from its node classes."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from ..storage import Storage

# Pixels in float32 from 0 to 1, as ComfyUI's tensors hold them: one IMAGE value is a batch, a list of
# [height, width, 3] arrays; one MASK value is a list of [height, width] arrays.
Pixels = NDArray[np.float32]
ImageBatch = list[Pixels]
MaskBatch = list[Pixels]
InputTypes = dict[str, dict[str, Any]]


class InterruptProcessingError(Exception):
    """Raised at a node boundary or progress tick once an interrupt was requested."""


class RunContext(Protocol):
    """What a running node may use: its identity, the folders, progress reporting and messages."""

    node_id: str
    prompt_id: str
    prompt: dict[str, Any]
    extra_pnginfo: Any
    storage: Storage
    step_delay: float
    # ComfyUI's --preview-method: "none" (its default) sends samplers' previews to no one.
    preview_method: str

    def progress(
        self, value: int, total: int, preview_png: bytes | None = None, image_format: str = "PNG"
    ) -> None:
        """Report a progress tick, with a preview image (PNG or JPEG bytes); raises
        InterruptProcessingError first if an interrupt is pending."""

    def send_text(self, text: str) -> None:
        """Send a binary TEXT frame for this node to every socket."""

    def pause(self, seconds: float) -> None:
        """Wait as a step of work would, returning early when an interrupt arrives."""


@dataclass
class NodeOutput:
    result: tuple[Any, ...] = ()
    ui: dict[str, list[Any]] | None = None


class Node:
    name: ClassVar[str]
    display_name: ClassVar[str]
    category: ClassVar[str]
    description: ClassVar[str] = ""
    python_module: ClassVar[str] = "nodes"
    return_types: ClassVar[tuple[str, ...]] = ()
    return_names: ClassVar[tuple[str, ...] | None] = None
    output_tooltips: ClassVar[tuple[str, ...] | None] = None
    output_node: ClassVar[bool] = False
    # Inputs handed to validate_inputs; like ComfyUI's VALIDATE_INPUTS arguments they skip the range and
    # list checks.
    validate_args: ClassVar[tuple[str, ...]] = ()

    def input_types(self, storage: Storage) -> InputTypes:
        raise NotImplementedError

    def validate_inputs(self, storage: Storage, values: dict[str, Any]) -> bool | str:
        return True

    def is_changed(self, storage: Storage, values: dict[str, Any]) -> Any:
        """A value folded into the cache key; return something new each time to defeat caching."""
        return None

    def run(self, ctx: RunContext, inputs: dict[str, Any]) -> NodeOutput:
        raise NotImplementedError

    def object_info(self, storage: Storage) -> dict[str, Any]:
        types = self.input_types(storage)
        info: dict[str, Any] = {
            "input": types,
            "input_order": {section: list(values) for section, values in types.items()},
            "output": list(self.return_types),
            "output_is_list": [False] * len(self.return_types),
            "output_name": list(self.return_names or self.return_types),
            "name": self.name,
            "display_name": self.display_name,
            "description": self.description,
            "python_module": self.python_module,
            "category": self.category,
            "output_node": self.output_node,
        }
        if self.output_tooltips is not None:
            info["output_tooltips"] = list(self.output_tooltips)
        return info


def from_pil(image: Image.Image) -> Pixels:
    """As ComfyUI's LoadImage reads a file: 8-bit values divided by 255 in float32."""
    return np.asarray(image).astype(np.float32) / 255.0


def to_pil(pixels: Pixels) -> Image.Image:
    """As ComfyUI's SaveImage writes one: times 255 in float32, clipped, then truncated (not rounded)."""
    return Image.fromarray(np.clip(255.0 * pixels, 0, 255).astype(np.uint8))


def png_bytes(image: Image.Image, compress_level: int = 1) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()
