"""Stand-ins for a checkpoint text-to-image pipeline: real input specs, progress and timing, no model.

The decoded image is a placeholder that says in drawn text that it is simulated, so it can never be
mistaken for a generated picture.
"""

from __future__ import annotations

import io
import random
import textwrap
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageDraw, ImageFont, ImageOps

from ..storage import Storage
from .base import ImageBatch, InputTypes, Node, NodeOutput, RunContext, from_pil
from .image import MAX_RESOLUTION

SAMPLERS = [
    "euler", "euler_cfg_pp", "euler_ancestral", "euler_ancestral_cfg_pp", "heun", "heunpp2", "dpm_2",
    "dpm_2_ancestral", "lms", "dpm_fast", "dpm_adaptive", "dpmpp_2s_ancestral", "dpmpp_2s_ancestral_cfg_pp",
    "dpmpp_sde", "dpmpp_sde_gpu", "dpmpp_2m", "dpmpp_2m_cfg_pp", "dpmpp_2m_sde", "dpmpp_2m_sde_gpu",
    "dpmpp_2m_sde_heun", "dpmpp_2m_sde_heun_gpu", "dpmpp_3m_sde", "dpmpp_3m_sde_gpu", "ddpm", "lcm", "ipndm",
    "ipndm_v", "deis", "res_multistep", "res_multistep_cfg_pp", "res_multistep_ancestral",
    "res_multistep_ancestral_cfg_pp", "gradient_estimation", "gradient_estimation_cfg_pp", "er_sde",
    "seeds_2", "seeds_3", "sa_solver", "sa_solver_pece", "ddim", "uni_pc", "uni_pc_bh2",
]  # fmt: skip
SCHEDULERS = [
    "simple", "sgm_uniform", "karras", "exponential", "ddim_uniform", "beta", "normal", "linear_quadratic",
    "kl_optimal",
]  # fmt: skip


@dataclass(frozen=True)
class SimModel:
    ckpt_name: str


@dataclass(frozen=True)
class SimClip:
    ckpt_name: str


@dataclass(frozen=True)
class SimVae:
    ckpt_name: str


@dataclass(frozen=True)
class SimConditioning:
    text: str
    ckpt_name: str


@dataclass(frozen=True)
class SimLatent:
    """Pixel size and batch of a latent, plus how it was 'sampled' so the decoder can print it."""

    width: int
    height: int
    batch_size: int
    sampled: dict[str, Any] | None = None


class CheckpointLoaderSimple(Node):
    name = "CheckpointLoaderSimple"
    display_name = "Load Checkpoint"
    category = "loaders"
    description = "Loads a diffusion model checkpoint, diffusion models are used to denoise latents."
    return_types = ("MODEL", "CLIP", "VAE")
    output_tooltips = (
        "The model used for denoising latents.",
        "The CLIP model used for encoding text prompts.",
        "The VAE model used for encoding and decoding images to and from latent space.",
    )

    def input_types(self, storage: Storage) -> InputTypes:
        tooltip = "The name of the checkpoint (model) to load."
        return {"required": {"ckpt_name": [model_names(storage, "checkpoints"), {"tooltip": tooltip}]}}

    def run(self, ctx: RunContext, inputs: dict[str, Any]) -> NodeOutput:
        name = inputs["ckpt_name"]
        read_model(ctx.storage, "checkpoints", name)
        return NodeOutput((SimModel(name), SimClip(name), SimVae(name)))


def model_names(storage: Storage, folder: str) -> list[str]:
    return storage.models.names(folder)


def read_model(storage: Storage, folder: str, name: str) -> bytes:
    """Reads the file as a loader would (it may be gone since validation: ComfyUI fails the node then)."""
    return storage.models.full_path(folder, name).read_bytes()[:64]


class LoraLoader(Node):
    name = "LoraLoader"
    display_name = "Load LoRA"
    category = "loaders"
    description = (
        "LoRAs are used to modify diffusion and CLIP models, altering the way in which latents are denoised "
        "such as applying styles. Multiple LoRA nodes can be linked together."
    )
    return_types = ("MODEL", "CLIP")
    output_tooltips = ("The modified diffusion model.", "The modified CLIP model.")

    def input_types(self, storage: Storage) -> InputTypes:
        def strength(what: str) -> list[Any]:
            tip = f"How strongly to modify the {what}. This value can be negative."
            return ["FLOAT", {"default": 1.0, "min": -100.0, "max": 100.0, "step": 0.01, "tooltip": tip}]

        return {
            "required": {
                "model": ["MODEL", {"tooltip": "The diffusion model the LoRA will be applied to."}],
                "clip": ["CLIP", {"tooltip": "The CLIP model the LoRA will be applied to."}],
                "lora_name": [model_names(storage, "loras"), {"tooltip": "The name of the LoRA."}],
                "strength_model": strength("diffusion model"),
                "strength_clip": strength("CLIP model"),
            }
        }

    def run(self, ctx: RunContext, inputs: dict[str, Any]) -> NodeOutput:
        read_model(ctx.storage, "loras", inputs["lora_name"])
        return NodeOutput((inputs["model"], inputs["clip"]))


class VAELoader(Node):
    name = "VAELoader"
    display_name = "Load VAE"
    category = "loaders"
    return_types = ("VAE",)

    def input_types(self, storage: Storage) -> InputTypes:
        # ComfyUI also offers "pixel_space", which reads no file.
        return {"required": {"vae_name": [[*model_names(storage, "vae"), "pixel_space"]]}}

    def run(self, ctx: RunContext, inputs: dict[str, Any]) -> NodeOutput:
        if inputs["vae_name"] != "pixel_space":
            read_model(ctx.storage, "vae", inputs["vae_name"])
        return NodeOutput((SimVae(inputs["vae_name"]),))


class CLIPTextEncode(Node):
    name = "CLIPTextEncode"
    display_name = "CLIP Text Encode (Prompt)"
    category = "conditioning"
    description = (
        "Encodes a text prompt using a CLIP model into an embedding that can be used to guide the diffusion "
        "model towards generating specific images."
    )
    return_types = ("CONDITIONING",)
    output_tooltips = ("A conditioning containing the embedded text used to guide the diffusion model.",)

    def input_types(self, storage: Storage) -> InputTypes:
        return {
            "required": {
                "text": [
                    "STRING",
                    {"multiline": True, "dynamicPrompts": True, "tooltip": "The text to be encoded."},
                ],
                "clip": ["CLIP", {"tooltip": "The CLIP model used for encoding the text."}],
            }
        }

    def run(self, ctx: RunContext, inputs: dict[str, Any]) -> NodeOutput:
        clip: SimClip = inputs["clip"]
        return NodeOutput((SimConditioning(inputs["text"], clip.ckpt_name),))


class EmptyLatentImage(Node):
    name = "EmptyLatentImage"
    display_name = "Empty Latent Image"
    category = "latent"
    description = "Create a new batch of empty latent images to be denoised via sampling."
    return_types = ("LATENT",)
    output_tooltips = ("The empty latent image batch.",)

    def input_types(self, storage: Storage) -> InputTypes:
        def size(axis: str) -> dict[str, Any]:
            tooltip = f"The {axis} of the latent images in pixels."
            return {"default": 512, "min": 16, "max": MAX_RESOLUTION, "step": 8, "tooltip": tooltip}

        batch = {"default": 1, "min": 1, "max": 4096, "tooltip": "The number of latent images in the batch."}
        return {
            "required": {
                "width": ["INT", size("width")],
                "height": ["INT", size("height")],
                "batch_size": ["INT", batch],
            }
        }

    def run(self, ctx: RunContext, inputs: dict[str, Any]) -> NodeOutput:
        # Latents are an eighth of the pixel size, so odd sizes round down to a multiple of 8 when decoded.
        width, height = inputs["width"] // 8 * 8, inputs["height"] // 8 * 8
        return NodeOutput((SimLatent(width, height, inputs["batch_size"]),))


class KSampler(Node):
    name = "KSampler"
    display_name = "KSampler"
    category = "sampling"
    description = "Uses the provided model, positive and negative conditioning to denoise the latent image."
    return_types = ("LATENT",)
    output_tooltips = ("The denoised latent.",)

    def input_types(self, storage: Storage) -> InputTypes:
        def tip(text: str, **config: Any) -> dict[str, Any]:
            return {**config, "tooltip": text}

        return {
            "required": {
                "model": ["MODEL", tip("The model used for denoising the input latent.")],
                "seed": [
                    "INT",
                    tip(
                        "The random seed used for creating the noise.",
                        default=0,
                        min=0,
                        max=0xFFFFFFFFFFFFFFFF,
                        control_after_generate=True,
                    ),
                ],
                "steps": [
                    "INT",
                    tip("The number of steps used in the denoising process.", default=20, min=1, max=10000),
                ],
                "cfg": [
                    "FLOAT",
                    tip(
                        "The Classifier-Free Guidance scale.",
                        default=8.0,
                        min=0.0,
                        max=100.0,
                        step=0.1,
                        round=0.01,
                    ),
                ],
                "sampler_name": [list(SAMPLERS), tip("The algorithm used when sampling.")],
                "scheduler": [list(SCHEDULERS), tip("The scheduler controls how noise is removed.")],
                "positive": ["CONDITIONING", tip("The attributes you want to include in the image.")],
                "negative": ["CONDITIONING", tip("The attributes you want to exclude from the image.")],
                "latent_image": ["LATENT", tip("The latent image to denoise.")],
                "denoise": [
                    "FLOAT",
                    tip("The amount of denoising applied.", default=1.0, min=0.0, max=1.0, step=0.01),
                ],
            }
        }

    def run(self, ctx: RunContext, inputs: dict[str, Any]) -> NodeOutput:
        steps: int = inputs["steps"]
        latent: SimLatent = inputs["latent_image"]
        # What the sampler converges to, at the latent's size: drawn once, not at every step.
        target = placeholder(latent, 0).resize((max(1, latent.width // 8), max(1, latent.height // 8)))
        # Encoded once per tenth of the way: a long run's previews cost the simulator little.
        previews: dict[int, bytes] = {}
        for step in range(steps):
            ctx.pause(ctx.step_delay)
            if ctx.preview_method == "none":
                ctx.progress(step + 1, steps)
                continue
            tenth = (10 * (step + 1)) // steps
            if tenth not in previews:
                previews[tenth] = latent_preview(target, inputs["seed"], tenth / 10)
            ctx.progress(step + 1, steps, previews[tenth], image_format="JPEG")
        positive: SimConditioning = inputs["positive"]
        negative: SimConditioning = inputs["negative"]
        model: SimModel = inputs["model"]
        sampled = {
            "ckpt_name": model.ckpt_name,
            "positive": positive.text,
            "negative": negative.text,
            "seed": inputs["seed"],
            "steps": steps,
            "cfg": inputs["cfg"],
            "sampler_name": inputs["sampler_name"],
            "scheduler": inputs["scheduler"],
            "denoise": inputs["denoise"],
        }
        return NodeOutput((SimLatent(latent.width, latent.height, latent.batch_size, sampled),))


class VAEDecode(Node):
    name = "VAEDecode"
    display_name = "VAE Decode"
    category = "latent"
    description = "Decodes latent images back into pixel space images."
    return_types = ("IMAGE",)
    output_tooltips = ("The decoded image.",)

    def input_types(self, storage: Storage) -> InputTypes:
        return {
            "required": {
                "samples": ["LATENT", {"tooltip": "The latent to be decoded."}],
                "vae": ["VAE", {"tooltip": "The VAE model used for decoding the latent."}],
            }
        }

    def run(self, ctx: RunContext, inputs: dict[str, Any]) -> NodeOutput:
        latent: SimLatent = inputs["samples"]
        return NodeOutput(([from_pil(placeholder(latent, i)) for i in range(latent.batch_size)],))


# ComfyUI's --preview-size default: its previews are scaled to fit this square, up or down.
PREVIEW_SIZE = 512


def latent_preview(target: Image.Image, seed: int, done: float) -> bytes:
    """A sampler's preview as ComfyUI's latent2rgb makes it: the latent's size (``target``'s, an eighth of
    the image's), scaled to fit ``PREVIEW_SIZE`` (bilinear), JPEG at quality 95. Noise clears as ``done``
    goes to 1."""
    noise = random.Random(seed).randbytes(target.width * target.height * 3)
    image = Image.blend(Image.frombytes("RGB", target.size, noise), target, done)
    image = ImageOps.contain(image, (PREVIEW_SIZE, PREVIEW_SIZE), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def placeholder(latent: SimLatent, index: int) -> Image.Image:
    """A seeded gradient with the word SIMULATED and the sampling settings drawn on it."""
    info = latent.sampled or {}
    rng = random.Random(f"{info.get('seed')}:{index}:{info.get('positive')}")
    top = tuple(rng.randrange(20, 120) for _ in range(3))
    bottom = tuple(rng.randrange(100, 230) for _ in range(3))
    width, height = latent.width, latent.height
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for y in range(height):
        t = y / max(1, height - 1)
        draw.line(
            [(0, y), (width, y)], fill=tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))
        )
    for _ in range(6):
        x, y, r = rng.randrange(width), rng.randrange(height), rng.randrange(4, max(5, width // 4))
        shade = tuple(rng.randrange(40, 255) for _ in range(3))
        draw.ellipse([x - r, y - r, x + r, y + r], outline=shade, width=max(1, width // 128))

    big_size, small_size = max(12, width // 8), max(8, width // 32)
    big, small = ImageFont.load_default(size=big_size), ImageFont.load_default(size=small_size)
    white, black = (255, 255, 255), (0, 0, 0)
    stroke = max(1, width // 256)
    draw.text((width // 2, height // 10), "SIMULATED", font=big, anchor="mt", fill=white, stroke_width=stroke,
              stroke_fill=black)  # fmt: skip
    lines = ["comfyui-sim placeholder - no model was run"]
    if info:
        lines.append(f"prompt: {info['positive']}")
        if info["negative"]:
            lines.append(f"negative: {info['negative']}")
        lines.append(f"{info['ckpt_name']}  seed {info['seed']}  steps {info['steps']}  cfg {info['cfg']}")
        lines.append(f"{info['sampler_name']} / {info['scheduler']}  denoise {info['denoise']}")
    lines.append(f"{width}x{height}  image {index + 1} of {latent.batch_size}")
    chars = max(8, int(width / (small_size * 0.6)))
    wrapped = [part for line in lines for part in (textwrap.wrap(line, chars) or [""])]
    y = height // 10 + big_size + small_size
    for line in wrapped:
        if y > height - small_size:
            break
        draw.text((max(2, width // 40), y), line, font=small, fill=white, stroke_width=1, stroke_fill=black)
        y += int(small_size * 1.25)
    return image


class VAEEncode(Node):
    name = "VAEEncode"
    display_name = "VAE Encode"
    category = "latent"
    description = "Encodes pixel space images into latent space images."
    return_types = ("LATENT",)
    output_tooltips = ("The encoded latent.",)

    def input_types(self, storage: Storage) -> InputTypes:
        return {
            "required": {
                "pixels": ["IMAGE", {"tooltip": "The image to be encoded."}],
                "vae": ["VAE", {"tooltip": "The VAE model used for encoding the image."}],
            }
        }

    def run(self, ctx: RunContext, inputs: dict[str, Any]) -> NodeOutput:
        images: ImageBatch = inputs["pixels"]
        height, width = images[0].shape[:2]
        return NodeOutput((SimLatent(width // 8 * 8, height // 8 * 8, len(images)),))
