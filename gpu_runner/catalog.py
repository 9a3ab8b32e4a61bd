"""What this runner's ComfyUI reads from its folders, read each time the runner (re)connects to it, and
published to the artifacts bucket when it changed, so the API can refuse a bad file input, or a model the
library lacks, at submit.

Model inputs are found the way file inputs are: a probe file is placed in each of ComfyUI's model folders
(named by its own ``GET /models``) inside the model cache, which ComfyUI reads as an extra model path,
and a combo that then lists a folder's probe is a model input of that folder."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from gpu_runner.cleanup import ComfyFolders
from gpu_runner.comfy import ComfyClient, ComfyUnavailable
from gpu_runner.log import logger
from shared.aws.catalog import CatalogStore
from shared.errors import ServiceUnavailable
from shared.file_inputs import FileInputCatalog, catalog_from_object_info

# Extensions ComfyUI's loaders filter their folder listings by (images, video, audio, latents, 3D).
PROBE_SUFFIXES = (
    ".png",
    ".jpg",
    ".webp",
    ".mp4",
    ".webm",
    ".wav",
    ".mp3",
    ".flac",
    ".latent",
    ".glb",
    ".obj",
)
# An extension every model folder's listing accepts (ComfyUI's supported_pt_extensions).
MODEL_PROBE_SUFFIX = ".safetensors"
# Folders in ComfyUI's list that hold no models a node input names.
NOT_MODEL_FOLDERS = frozenset({"custom_nodes", "configs"})


class CatalogKeeper:
    def __init__(
        self, comfy: ComfyClient, store: CatalogStore, folders: ComfyFolders, model_root: Path | None = None
    ) -> None:
        self._comfy = comfy
        self._store = store
        self._folders = folders
        self._model_root = model_root
        self.catalog = FileInputCatalog()
        self._read_on: int | None = None
        self._published = False

    @property
    def ready(self) -> bool:
        """Whether the catalog was read from the ComfyUI connected now."""
        return self._read_on == self._comfy.connections

    async def refresh(self) -> FileInputCatalog:
        """The catalog of the ComfyUI this runner is connected to now; read again after a reconnect."""
        if self._read_on != self._comfy.connections:
            connection = self._comfy.connections
            with contextlib.suppress(ComfyUnavailable):
                self.catalog = await self._read()
                self._read_on = connection
                self._published = False
        if not self._published and self._read_on is not None:
            try:
                wrote = await asyncio.to_thread(self._store.publish, self.catalog)
            except (ServiceUnavailable, ClientError, BotoCoreError) as error:
                logger.warning("could not publish the file-input catalog", extra={"error": str(error)})
            else:
                self._published = True
                logger.info(
                    "file-input catalog read",
                    extra={"published": wrote, "file_inputs": len(self.catalog.file_inputs)},
                )
        return self.catalog

    async def _read(self) -> FileInputCatalog:
        """``/object_info``, asked while probe files sit in ComfyUI's folders, so a combo that lists a
        folder's files shows one of them."""
        token = f"comfy-api-probe-{secrets.token_hex(8)}"
        model_folders = await self._comfy.model_folders() if self._model_root else []
        probes = await asyncio.to_thread(self._place_probes, token)
        # A token of its own: a model combo must not look like one listing the input folder.
        model_token = f"comfy-api-model-probe-{secrets.token_hex(8)}"
        model_probes, placed = await asyncio.to_thread(self._place_model_probes, model_token, model_folders)
        try:
            info = await self._comfy.object_info()
        finally:
            await asyncio.to_thread(_remove_probes, probes + placed)
        catalog = catalog_from_object_info(info, token if probes else "", model_probes)
        if model_probes and not catalog.model_inputs:
            logger.warning(
                "ComfyUI lists none of the model cache's files: add it to ComfyUI's extra_model_paths",
                extra={"model_cache": str(self._model_root)},
            )
        return await asyncio.to_thread(self._without_cached, catalog)

    def _place_model_probes(self, token: str, folders: list[str]) -> tuple[dict[str, str], list[Path]]:
        probes: dict[str, str] = {}
        placed: list[Path] = []
        if self._model_root is None:
            return probes, placed
        for folder in folders:
            if folder in NOT_MODEL_FOLDERS or "/" in folder or folder.startswith("."):
                continue
            name = f"{token}-{folder}{MODEL_PROBE_SUFFIX}"
            try:
                (self._model_root / folder).mkdir(parents=True, exist_ok=True)
                (self._model_root / folder / name).touch()
            except OSError as error:
                logger.warning(
                    "could not probe a model folder", extra={"folder": folder, "error": str(error)}
                )
                continue
            probes[name] = folder
            placed.append(self._model_root / folder / name)
        return probes, placed

    def _without_cached(self, catalog: FileInputCatalog) -> FileInputCatalog:
        """What ComfyUI lists in a model folder from the cache is not bundled with it: it may go."""
        if self._model_root is None:
            return catalog
        bundled = {}
        for folder, names in catalog.bundled_models.items():
            base = self._model_root / folder
            cached = {p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file()}
            bundled[folder] = tuple(name for name in names if name not in cached)
        return dataclasses.replace(catalog, bundled_models=bundled)

    def _place_probes(self, token: str) -> list[Path]:
        placed: list[Path] = []
        for base in self._folders.by_type.values():
            try:
                folder = base / token
                folder.mkdir(parents=True)
                placed.append(folder)
                for suffix in PROBE_SUFFIXES:
                    probe = base / f"{token}{suffix}"
                    probe.touch()
                    placed.append(probe)
            except OSError as error:
                logger.warning(
                    "could not probe ComfyUI's folder", extra={"folder": str(base), "error": str(error)}
                )
        return placed


def _remove_probes(paths: list[Path]) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            path.rmdir() if path.is_dir() else path.unlink()
