"""The node classes the simulator knows, by ComfyUI class_type."""

from __future__ import annotations

from .base import InterruptProcessingError, Node, NodeOutput, RunContext
from .image import EmptyImage, GetImageSize, ImageBlur, ImageInvert, ImageScale, ImageToMask, MaskToImage
from .io import LoadImage, PreviewAny, PreviewImage, SaveImage, SaveImageWebsocket
from .txt2img import (
    CheckpointLoaderSimple,
    CLIPTextEncode,
    EmptyLatentImage,
    KSampler,
    LoraLoader,
    VAEDecode,
    VAEEncode,
    VAELoader,
)

NODE_CLASSES: dict[str, Node] = {
    node.name: node
    for node in (
        EmptyImage(),
        ImageInvert(),
        ImageBlur(),
        ImageScale(),
        ImageToMask(),
        MaskToImage(),
        GetImageSize(),
        SaveImage(),
        PreviewImage(),
        SaveImageWebsocket(),
        LoadImage(),
        PreviewAny(),
        CheckpointLoaderSimple(),
        LoraLoader(),
        VAELoader(),
        CLIPTextEncode(),
        EmptyLatentImage(),
        KSampler(),
        VAEDecode(),
        VAEEncode(),
    )
}

__all__ = ["NODE_CLASSES", "InterruptProcessingError", "Node", "NodeOutput", "RunContext"]
