"""The ``extra_model_paths.yaml`` that makes ComfyUI read the runner's model cache.

ComfyUI reads it once, at start (``--extra-model-paths-config``), before any runner has asked it which
folders it has; so it names ComfyUI's standard model folders. Which node inputs read which folder is
still learnt from ComfyUI itself (``gpu_runner/catalog.py``): a folder missing here only means its
models are never found in the cache, and the runner says so in its log.
"""

from __future__ import annotations

# ComfyUI 0.3's folder_paths model folders (less custom_nodes and configs, which hold no models).
COMFYUI_MODEL_FOLDERS = (
    "checkpoints", "loras", "vae", "text_encoders", "clip", "diffusion_models", "unet", "clip_vision",
    "style_models", "embeddings", "diffusers", "vae_approx", "controlnet", "t2i_adapter", "gligen",
    "upscale_models", "latent_upscale_models", "hypernetworks", "photomaker", "classifiers",
    "model_patches", "audio_encoders",
)  # fmt: skip
EXTRA_MODEL_PATHS_FILE = "extra_model_paths.yaml"
SECTION = "comfy_api_model_cache"


def extra_model_paths_yaml(base_path: str) -> str:
    lines = [f"{SECTION}:", f"  base_path: {base_path}"]
    lines += [f"  {folder}: {folder}" for folder in COMFYUI_MODEL_FOLDERS]
    return "\n".join(lines) + "\n"
