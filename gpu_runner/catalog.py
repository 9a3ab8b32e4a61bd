"""What this runner's ComfyUI reads from its folders, read each time the runner (re)connects to it, and
published to the artifacts bucket when it changed, so the API can refuse a bad file input at submit."""

from __future__ import annotations

import asyncio
import contextlib
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


class CatalogKeeper:
    def __init__(self, comfy: ComfyClient, store: CatalogStore, folders: ComfyFolders) -> None:
        self._comfy = comfy
        self._store = store
        self._folders = folders
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
        probes = await asyncio.to_thread(self._place_probes, token)
        try:
            info = await self._comfy.object_info()
        finally:
            await asyncio.to_thread(_remove_probes, probes)
        return catalog_from_object_info(info, token if probes else "")

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
