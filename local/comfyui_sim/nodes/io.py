"""Nodes that read the input folder, write the output and temp folders, or report back to clients."""

from __future__ import annotations

import hashlib
import json
import random
import time
from typing import Any

import numpy as np
from PIL import Image, ImageOps, ImageSequence
from PIL.PngImagePlugin import PngInfo

from ..storage import Storage
from .base import ImageBatch, InputTypes, Node, NodeOutput, Pixels, RunContext, from_pil, png_bytes, to_pil

PREFIX_TOOLTIP = (
    "The prefix for the file to save. This may include formatting information such as %date:yyyy-MM-dd% or "
    "%Empty Latent Image.width% to include values from nodes."
)
TEMP_SUFFIX_LETTERS = "abcdefghijklmnopqrstupvxyz"


def _expand_prefix(prefix: str, width: int, height: int) -> str:
    if "%" not in prefix:
        return prefix
    now = time.localtime()
    for key, value in (
        ("%width%", width),
        ("%height%", height),
        ("%year%", now.tm_year),
        ("%month%", f"{now.tm_mon:02}"),
        ("%day%", f"{now.tm_mday:02}"),
        ("%hour%", f"{now.tm_hour:02}"),
        ("%minute%", f"{now.tm_min:02}"),
        ("%second%", f"{now.tm_sec:02}"),
    ):
        prefix = prefix.replace(key, str(value))
    return prefix


class SaveImage(Node):
    name = "SaveImage"
    display_name = "Save Image"
    category = "image"
    description = "Saves the input images to your ComfyUI output directory."
    output_node = True
    kind = "output"
    compress_level = 4

    def input_types(self, storage: Storage) -> InputTypes:
        return {
            "required": {
                "images": ["IMAGE", {"tooltip": "The images to save."}],
                "filename_prefix": ["STRING", {"default": "ComfyUI", "tooltip": PREFIX_TOOLTIP}],
            },
            "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"},
        }

    def prefix_append(self) -> str:
        return ""

    def run(self, ctx: RunContext, inputs: dict[str, Any]) -> NodeOutput:
        images: ImageBatch = inputs["images"]
        prefix = inputs.get("filename_prefix", "ComfyUI") + self.prefix_append()
        height, width = images[0].shape[:2]
        prefix = _expand_prefix(prefix, width, height)
        base = ctx.storage.dir_for_type(self.kind) or ctx.storage.output_dir
        target = ctx.storage.save_path(prefix, base)
        metadata = PngInfo()
        metadata.add_text("prompt", json.dumps(ctx.prompt))
        if isinstance(ctx.extra_pnginfo, dict):
            for key, value in ctx.extra_pnginfo.items():
                metadata.add_text(key, json.dumps(value))
        results = []
        counter = target.counter
        for batch_number, image in enumerate(images):
            name = target.filename.replace("%batch_num%", str(batch_number))
            file = f"{name}_{counter:05}_.png"
            to_pil(image).save(target.folder / file, pnginfo=metadata, compress_level=self.compress_level)
            results.append({"filename": file, "subfolder": target.subfolder, "type": self.kind})
            counter += 1
        return NodeOutput((), {"images": results})


class PreviewImage(SaveImage):
    name = "PreviewImage"
    display_name = "Preview Image"
    kind = "temp"
    compress_level = 1

    def input_types(self, storage: Storage) -> InputTypes:
        return {
            "required": {"images": ["IMAGE"]},
            "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"},
        }

    def prefix_append(self) -> str:
        return "_temp_" + "".join(random.choice(TEMP_SUFFIX_LETTERS) for _ in range(5))


class SaveImageWebsocket(Node):
    name = "SaveImageWebsocket"
    display_name = "SaveImageWebsocket"
    category = "api node/image"
    python_module = "custom_nodes.websocket_image_save"
    output_node = True

    def input_types(self, storage: Storage) -> InputTypes:
        return {"required": {"images": ["IMAGE"]}}

    def is_changed(self, storage: Storage, values: dict[str, Any]) -> Any:
        # The real node returns time.time(), so it is never served from the cache.
        return time.time()

    def run(self, ctx: RunContext, inputs: dict[str, Any]) -> NodeOutput:
        images: ImageBatch = inputs["images"]
        # Each image rides on a progress tick, numbered 0..n-1 as the real node does.
        for step, image in enumerate(images):
            ctx.progress(step, len(images), png_bytes(to_pil(image)))
        return NodeOutput(())


class LoadImage(Node):
    name = "LoadImage"
    display_name = "Load Image"
    category = "image"
    return_types = ("IMAGE", "MASK")
    validate_args = ("image",)

    def input_types(self, storage: Storage) -> InputTypes:
        return {"required": {"image": [storage.input_images(), {"image_upload": True}]}}

    def validate_inputs(self, storage: Storage, values: dict[str, Any]) -> bool | str:
        if not storage.annotated_exists(str(values.get("image"))):
            return f"Invalid image file: {values.get('image')}"
        return True

    def is_changed(self, storage: Storage, values: dict[str, Any]) -> Any:
        path = storage.annotated_path(str(values.get("image")))
        return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None

    def run(self, ctx: RunContext, inputs: dict[str, Any]) -> NodeOutput:
        path = ctx.storage.annotated_path(inputs["image"])
        images: list[Pixels] = []
        masks: list[Pixels] = []
        with Image.open(path) as source:
            for frame in ImageSequence.Iterator(source):
                frame = ImageOps.exif_transpose(frame) or frame
                rgb = from_pil(frame.convert("RGB"))
                if images and rgb.shape != images[0].shape:
                    continue
                images.append(rgb)
                if "A" in frame.getbands():
                    masks.append(1.0 - from_pil(frame.getchannel("A")))
                elif frame.mode == "P" and "transparency" in frame.info:
                    masks.append(1.0 - from_pil(frame.convert("RGBA").getchannel("A")))
                else:
                    masks.append(np.zeros((64, 64), np.float32))
        return NodeOutput((images, masks))


class PreviewAny(Node):
    name = "PreviewAny"
    display_name = "Preview Any"
    category = "utils"
    python_module = "comfy_extras.nodes_preview_any"
    output_node = True

    def input_types(self, storage: Storage) -> InputTypes:
        return {"required": {"source": ["*", {}]}}

    def run(self, ctx: RunContext, inputs: dict[str, Any]) -> NodeOutput:
        source = inputs.get("source")
        value = "None"
        if isinstance(source, str):
            value = source
        elif isinstance(source, (int, float, bool)):
            value = str(source)
        elif source is not None:
            try:
                value = json.dumps(source)
            except (TypeError, ValueError):
                value = str(source)
        return NodeOutput((), {"text": [value]})
