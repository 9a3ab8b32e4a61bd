"""ComfyUI's model folders as folder_paths keeps them: ``<data>/models/<folder>`` first, then every path an
``--extra-model-paths-config`` file adds, listed recursively and filtered by extension.

The simulator ships the two checkpoints the examples name in its own ``models/checkpoints`` (as an image
with baked-in models would); anything else must be on disk, put there by the runner's model cache.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

# folder_paths.supported_pt_extensions: what a model folder's listing keeps.
MODEL_EXTENSIONS = frozenset({".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"})
MODEL_FOLDERS = [
    "checkpoints", "configs", "loras", "vae", "text_encoders", "diffusion_models", "clip_vision",
    "style_models", "embeddings", "diffusers", "vae_approx", "controlnet", "gligen", "upscale_models",
    "custom_nodes", "hypernetworks", "photomaker", "classifiers", "model_patches", "audio_encoders",
]  # fmt: skip
BUNDLED_CHECKPOINTS = ("sd_xl_base_1.0.safetensors", "v1-5-pruned-emaonly.safetensors")


class ModelFolders:
    def __init__(self, data_dir: Path, extra_config: Path | None = None) -> None:
        self.paths: dict[str, list[Path]] = {
            folder: [data_dir / "models" / folder] for folder in MODEL_FOLDERS
        }
        own = data_dir / "models" / "checkpoints"
        own.mkdir(parents=True, exist_ok=True)
        for name in BUNDLED_CHECKPOINTS:
            if not (own / name).exists():
                (own / name).write_bytes(b"simulated checkpoint: no weights\n")
        if extra_config is not None:
            self._add_config(extra_config)

    def _add_config(self, path: Path) -> None:
        """What folder_paths' load_extra_path_config does with the same file."""
        config: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for section in config.values():
            if not section:
                continue
            section = dict(section)
            given = section.pop("base_path", None)
            section.pop("is_default", None)
            base = path.parent
            if given is not None:
                base = path.parent / Path(os.path.expandvars(str(given))).expanduser()
            for folder, lines in section.items():
                for line in str(lines).split("\n"):
                    if line:
                        # An absolute line replaces the base, as os.path.join does in ComfyUI.
                        self.paths.setdefault(folder, []).append((base / line).resolve())

    def names(self, folder: str) -> list[str]:
        """The folder's model files, as ``get_filename_list`` names them (relative, '/'-separated)."""
        found: set[str] = set()
        for base in self.paths.get(folder, []):
            if not base.is_dir():
                continue
            for file in base.rglob("*"):
                if file.suffix.lower() in MODEL_EXTENSIONS and file.is_file():
                    found.add(file.relative_to(base).as_posix())
        return sorted(found)

    def full_path(self, folder: str, name: str) -> Path:
        """``get_full_path_or_raise``: the first folder path that has the file."""
        for base in self.paths.get(folder, []):
            candidate = base / name
            if candidate.is_file():
                return candidate
        raise FileNotFoundError(f"Model in folder '{folder}' with filename '{name}' not found.")
