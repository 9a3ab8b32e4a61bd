"""Removing a job's files from ComfyUI's folders, through the volume the runner shares with ComfyUI.

ComfyUI never deletes what a prompt read or wrote, and every tenant's prompts share its folders. Once a
job's outputs are in S3 (or the job ended without them) its input folder, its output folder and the
temp files its nodes reported are removed.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpu_runner.log import logger
from gpu_runner.outputs import ProducedFile, list_outputs
from shared.settings import RunnerSettings


@dataclass(frozen=True)
class ComfyFolders:
    """ComfyUI's folders by the type ComfyUI gives them (``input``, ``output``, ``temp``)."""

    by_type: dict[str, Path]

    @classmethod
    def from_settings(cls, settings: RunnerSettings) -> ComfyFolders:
        named = {
            "input": settings.comfyui_input_dir,
            "output": settings.comfyui_output_dir,
            "temp": settings.comfyui_temp_dir,
        }
        return cls({kind: Path(path) for kind, path in named.items() if path})

    def __bool__(self) -> bool:
        return bool(self.by_type)


def remove_job_files(folders: ComfyFolders, job_folder: str, produced: dict[str, dict[str, Any]]) -> int:
    """Removes the job's folder from every ComfyUI folder and each file its nodes reported; returns how many
    paths went. Never follows a name out of the folder it belongs to."""
    removed = 0
    for base in folders.by_type.values():
        removed += _remove(base, base / job_folder)
    for item in list_outputs(produced):
        if isinstance(item, ProducedFile) and item.folder_type in folders.by_type:
            base = folders.by_type[item.folder_type]
            removed += _remove(base, base / item.subfolder / item.filename)
    return removed


def _remove(base: Path, path: Path) -> int:
    try:
        resolved = path.resolve()
        if resolved == base.resolve() or not resolved.is_relative_to(base.resolve()):
            return 0
        if resolved.is_dir():
            shutil.rmtree(resolved)
        elif resolved.exists():
            resolved.unlink()
        else:
            return 0
    except OSError as error:
        # A file left behind costs disk, never a job: its name is one no other job can ask for.
        logger.warning(
            "could not remove a job file from ComfyUI's folders",
            extra={"path": str(path), "error": str(error)},
        )
        return 0
    return 1
