"""Model-free image nodes that compute real pixels with Pillow."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from ..storage import Storage
from .base import ImageBatch, InputTypes, MaskBatch, Node, NodeOutput, Pixels, RunContext, from_pil, to_pil

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
        # Each channel is a Python float (color / 255) stored in float32, as torch.full does.
        rgb = [((color >> shift) & 0xFF) / 0xFF for shift in (16, 8, 0)]
        image = np.empty((inputs["height"], inputs["width"], 3), np.float32)
        image[...] = rgb
        return NodeOutput(([image.copy() for _ in range(inputs["batch_size"])],))


class ImageInvert(Node):
    name = "ImageInvert"
    display_name = "Invert Image"
    category = "image"
    return_types = ("IMAGE",)

    def input_types(self, storage: Storage) -> InputTypes:
        return {"required": {"image": ["IMAGE"]}}

    def run(self, ctx: RunContext, inputs: dict[str, Any]) -> NodeOutput:
        images: ImageBatch = inputs["image"]
        return NodeOutput(([1.0 - im for im in images],))


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
        return NodeOutput(([_blur(im, inputs["blur_radius"], float(inputs["sigma"])) for im in images],))


def _blur(image: Pixels, radius: int, sigma: float) -> Pixels:
    """ComfyUI's blur: a (2r+1)² Gaussian over linspace(-1, 1), on a reflect-padded image.

    Its kernel is separable, so it is applied as two passes of one row of it, each by FFT: the same
    result up to float rounding (a saved pixel may differ by one), at a fraction of the cost.
    """
    if (image == image[:1, :1]).all() and image.shape[0] > radius + 1 and image.shape[1] > radius + 1:
        # One colour stays one colour: blur a patch just large enough and spread its value.
        patch = _blur(np.ascontiguousarray(image[: radius + 1, : radius + 1]), radius, sigma)
        return np.broadcast_to(patch[:1, :1], image.shape).copy()
    size = radius * 2 + 1
    x = np.linspace(-1, 1, size, dtype=np.float32)
    row = np.exp(-(x * x) / np.float32(2.0 * sigma * sigma))
    row = row / row.sum()
    padded = np.pad(image, ((radius, radius), (radius, radius), (0, 0)), mode="reflect")
    return _convolve_valid(_convolve_valid(padded, row, 1), row, 0).astype(np.float32)


def _convolve_valid(array: Pixels, kernel: Pixels, axis: int) -> Pixels:
    length = array.shape[axis] + kernel.size - 1
    shape = [1] * array.ndim
    shape[axis] = -1
    spectrum = np.fft.rfft(array, length, axis=axis) * np.fft.rfft(kernel, length).reshape(shape)
    full = np.fft.irfft(spectrum, length, axis=axis)
    kept = array.shape[axis] - kernel.size + 1
    return np.take(full, range(kernel.size - 1, kernel.size - 1 + kept), axis=axis)


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
        first_height, first_width = images[0].shape[:2]
        if width == 0:
            width = max(1, round(first_width * height / first_height))
        if height == 0:
            height = max(1, round(first_height * width / first_width))
        method, crop = inputs["upscale_method"], inputs["crop"]
        # Scaled through 8-bit images as ComfyUI's lanczos does (its other methods stay in float).
        out = [from_pil(_scale(to_pil(im), width, height, method, crop)) for im in images]
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
        bands = images[0].shape[2]
        if index >= bands:
            # The same failure torch reports when indexing a missing channel of a [B,H,W,C] tensor.
            raise IndexError(f"index {index} is out of bounds for dimension 3 with size {bands}")
        return NodeOutput(([im[:, :, index].copy() for im in images],))


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
        return NodeOutput(([np.repeat(m[:, :, None], 3, axis=2) for m in masks],))


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
        (height, width), batch = images[0].shape[:2], len(images)
        ctx.send_text(f"width: {width}, height: {height}\n batch size: {batch}")
        return NodeOutput((width, height, batch))
