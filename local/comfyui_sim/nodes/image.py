"""Model-free image nodes that compute real pixels with Pillow."""

from __future__ import annotations

from typing import Any

from PIL import Image, ImageFilter, ImageOps

from ..storage import Storage
from .base import ImageBatch, InputTypes, MaskBatch, Node, NodeOutput, RunContext

MAX_RESOLUTION = 16384
CHANNELS = ["red", "green", "blue", "alpha"]
UPSCALE_METHODS = ["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]
CROP_METHODS = ["disabled", "center"]
_RESAMPLE = {
    "nearest-exact": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "area": Image.Resampling.BOX,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


class EmptyImage(Node):
    name = "EmptyImage"
    display_name = "EmptyImage"
    category = "image"
    return_types = ("IMAGE",)

    def input_types(self, storage: Storage) -> InputTypes:
        return {
            "required": {
                "width": ["INT", {"default": 512, "min": 1, "max": MAX_RESOLUTION, "step": 1}],
                "height": ["INT", {"default": 512, "min": 1, "max": MAX_RESOLUTION, "step": 1}],
                "batch_size": ["INT", {"default": 1, "min": 1, "max": 4096}],
                "color": ["INT", {"default": 0, "min": 0, "max": 0xFFFFFF, "step": 1, "display": "color"}],
            }
        }

    def run(self, ctx: RunContext, inputs: dict[str, Any]) -> NodeOutput:
        color = inputs["color"]
        rgb = ((color >> 16) & 0xFF, (color >> 8) & 0xFF, color & 0xFF)
        size = (inputs["width"], inputs["height"])
        return NodeOutput((([Image.new("RGB", size, rgb) for _ in range(inputs["batch_size"])]),))


class ImageInvert(Node):
    name = "ImageInvert"
    display_name = "Invert Image"
    category = "image"
    return_types = ("IMAGE",)

    def input_types(self, storage: Storage) -> InputTypes:
        return {"required": {"image": ["IMAGE"]}}

    def run(self, ctx: RunContext, inputs: dict[str, Any]) -> NodeOutput:
        images: ImageBatch = inputs["image"]
        return NodeOutput(([ImageOps.invert(im.convert("RGB")) for im in images],))


class ImageBlur(Node):
    name = "ImageBlur"
    display_name = "Image Blur"
    category = "image/postprocessing"
    python_module = "comfy_extras.nodes_post_processing"
    return_types = ("IMAGE",)

    def input_types(self, storage: Storage) -> InputTypes:
        return {
            "required": {
                "image": ["IMAGE"],
                "blur_radius": ["INT", {"default": 1, "min": 1, "max": 31, "step": 1}],
                "sigma": ["FLOAT", {"default": 1.0, "min": 0.1, "max": 10.0, "step": 0.1}],
            }
        }

    def run(self, ctx: RunContext, inputs: dict[str, Any]) -> NodeOutput:
        images: ImageBatch = inputs["image"]
        # ComfyUI convolves with a (2r+1) Gaussian kernel; Pillow's blur takes sigma, capped by that kernel.
        blur = ImageFilter.GaussianBlur(min(float(inputs["sigma"]), float(inputs["blur_radius"])))
        return NodeOutput(([im.filter(blur) for im in images],))


class ImageScale(Node):
    name = "ImageScale"
    display_name = "Upscale Image"
    category = "image/upscaling"
    return_types = ("IMAGE",)

    def input_types(self, storage: Storage) -> InputTypes:
        size = {"default": 512, "min": 0, "max": MAX_RESOLUTION, "step": 1}
        return {
            "required": {
                "image": ["IMAGE"],
                "upscale_method": [UPSCALE_METHODS],
                "width": ["INT", dict(size)],
                "height": ["INT", dict(size)],
                "crop": [CROP_METHODS],
            }
        }

    def run(self, ctx: RunContext, inputs: dict[str, Any]) -> NodeOutput:
        images: ImageBatch = inputs["image"]
        width, height = inputs["width"], inputs["height"]
        if width == 0 and height == 0:
            return NodeOutput((images,))
        first = images[0]
        if width == 0:
            width = max(1, round(first.width * height / first.height))
        if height == 0:
            height = max(1, round(first.height * width / first.width))
        out = [_scale(im, width, height, inputs["upscale_method"], inputs["crop"]) for im in images]
        return NodeOutput((out,))


def _scale(image: Image.Image, width: int, height: int, method: str, crop: str) -> Image.Image:
    if crop == "center":
        old_aspect = image.width / image.height
        new_aspect = width / height
        x = y = 0
        if old_aspect > new_aspect:
            x = round((image.width - image.width * (new_aspect / old_aspect)) / 2)
        elif old_aspect < new_aspect:
            y = round((image.height - image.height * (old_aspect / new_aspect)) / 2)
        image = image.crop((x, y, image.width - x, image.height - y))
    return image.resize((width, height), _RESAMPLE[method])


class ImageToMask(Node):
    name = "ImageToMask"
    display_name = "Convert Image to Mask"
    category = "mask"
    python_module = "comfy_extras.nodes_mask"
    return_types = ("MASK",)

    def input_types(self, storage: Storage) -> InputTypes:
        return {"required": {"image": ["IMAGE"], "channel": [list(CHANNELS)]}}

    def run(self, ctx: RunContext, inputs: dict[str, Any]) -> NodeOutput:
        images: ImageBatch = inputs["image"]
        index = CHANNELS.index(inputs["channel"])
        bands = len(images[0].getbands())
        if index >= bands:
            # The same failure torch reports when indexing a missing channel of a [B,H,W,C] tensor.
            raise IndexError(f"index {index} is out of bounds for dimension 3 with size {bands}")
        return NodeOutput(([im.getchannel(index) for im in images],))


class MaskToImage(Node):
    name = "MaskToImage"
    display_name = "Convert Mask to Image"
    category = "mask"
    python_module = "comfy_extras.nodes_mask"
    return_types = ("IMAGE",)

    def input_types(self, storage: Storage) -> InputTypes:
        return {"required": {"mask": ["MASK"]}}

    def run(self, ctx: RunContext, inputs: dict[str, Any]) -> NodeOutput:
        masks: MaskBatch = inputs["mask"]
        return NodeOutput(([Image.merge("RGB", (m, m, m)) for m in masks],))


class GetImageSize(Node):
    name = "GetImageSize"
    display_name = "Get Image Size"
    category = "image"
    description = "Returns width and height of the image, and passes it through unchanged."
    python_module = "comfy_extras.nodes_images"
    return_types = ("INT", "INT", "INT")
    return_names = ("width", "height", "batch_size")

    def input_types(self, storage: Storage) -> InputTypes:
        return {"required": {"image": ["IMAGE"]}, "hidden": {"unique_id": "UNIQUE_ID"}}

    def run(self, ctx: RunContext, inputs: dict[str, Any]) -> NodeOutput:
        images: ImageBatch = inputs["image"]
        width, height, batch = images[0].width, images[0].height, len(images)
        ctx.send_text(f"width: {width}, height: {height}\n batch size: {batch}")
        return NodeOutput((width, height, batch))
