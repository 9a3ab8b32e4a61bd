"""The input, output and temp folders, laid out and named the way ComfyUI's folder_paths does."""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from pathlib import Path

from .model_folders import ModelFolders

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True)
class SavePath:
    folder: Path
    filename: str
    counter: int
    subfolder: str


def inside(base: Path, candidate: Path) -> bool:
    try:
        candidate.resolve().relative_to(base.resolve())
    except ValueError:
        return False
    return True


class Storage:
    def __init__(self, root: Path, extra_model_paths: Path | None = None) -> None:
        self.root = root
        self.models = ModelFolders(root, extra_model_paths)
        self.input_dir = root / "input"
        self.output_dir = root / "output"
        self.temp_dir = root / "temp"
        for folder in (self.input_dir, self.output_dir, self.temp_dir):
            folder.mkdir(parents=True, exist_ok=True)

    def dir_for_type(self, kind: str) -> Path | None:
        return {"input": self.input_dir, "output": self.output_dir, "temp": self.temp_dir}.get(kind)

    def input_images(self) -> list[str]:
        """Top-level image files of the input folder, as LoadImage lists them (subfolders are not listed)."""
        names = [p.name for p in self.input_dir.iterdir() if p.is_file()]
        return sorted(n for n in names if (mimetypes.guess_type(n)[0] or "").startswith("image/"))

    def annotated_path(self, name: str, default: str = "input") -> Path:
        """Resolve a loader's file name as folder_paths.get_annotated_filepath does.

        ``"name.png [output]"`` reads the output folder (ComfyUI cuts the annotation and the character
        before it), and nothing keeps the name inside its folder: ``"../output/x.png"`` or an absolute
        path reads wherever it points.
        """
        base = self.dir_for_type(default) or self.input_dir
        for kind in ("output", "input", "temp"):
            annotation = f"[{kind}]"
            if name.endswith(annotation):
                name = name[: -len(annotation) - 1]
                base = self.dir_for_type(kind) or base
                break
        return base / name  # an absolute name replaces the base, as os.path.join does

    def annotated_exists(self, name: str) -> bool:
        return self.annotated_path(name).exists()

    def save_path(self, prefix: str, base: Path) -> SavePath:
        """Pick the next free ``<prefix>_NNNNN_`` counter in the prefix's folder, as ComfyUI numbers files."""
        normalized = Path(prefix)
        subfolder = str(normalized.parent) if str(normalized.parent) != "." else ""
        filename = normalized.name
        folder = base / subfolder
        if not inside(base, folder):
            # A plain Exception, so execution_error reports exception_type "Exception" as ComfyUI does.
            raise Exception(
                "**** ERROR: Saving image outside the output folder is not allowed."
                f"\n full_output_folder: {folder.resolve()}\n         output_dir: {base}"
            )
        folder.mkdir(parents=True, exist_ok=True)
        counter = 0
        for existing in folder.iterdir():
            name = existing.name
            head, tail = name[: len(filename) + 1], name[len(filename) + 1 :]
            if head.lower() != (filename + "_").lower():
                continue
            digits = tail.split("_")[0]
            if digits.isdigit():
                counter = max(counter, int(digits))
        return SavePath(folder, filename, counter + 1, subfolder)
