"""Every file a prompt produced, fetched from ComfyUI's /view and stored in S3 under the attempt's prefix."""

from __future__ import annotations

import asyncio
import mimetypes
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from gpu_runner.comfy import ComfyClient, ComfyUnavailable
from gpu_runner.comfy_binary import SentImage
from shared.aws.storage import ArtifactStore
from shared.models import OutputFile
from shared.names import output_key

mimetypes.add_type("image/webp", ".webp")
mimetypes.add_type("video/mp4", ".mp4")
mimetypes.add_type("audio/flac", ".flac")
mimetypes.add_type("model/gltf-binary", ".glb")


@dataclass(frozen=True)
class ProducedFile:
    node_id: str
    filename: str
    subfolder: str
    folder_type: str


@dataclass(frozen=True)
class ProducedText:
    node_id: str
    index: int
    text: str


def list_outputs(outputs: dict[str, dict[str, Any]]) -> list[ProducedFile | ProducedText]:
    """Flattens ComfyUI's ``{node: {"images"|"gifs"|"audio"|...: [file...], "text": [str...]}}``."""
    found: list[ProducedFile | ProducedText] = []
    for node_id, node_output in sorted(outputs.items()):
        texts = 0
        for items in node_output.values():
            if not isinstance(items, list):
                continue
            for item in items:
                if isinstance(item, dict) and isinstance(item.get("filename"), str):
                    found.append(
                        ProducedFile(
                            node_id,
                            item["filename"],
                            str(item.get("subfolder") or ""),
                            str(item.get("type") or "output"),
                        )
                    )
                elif isinstance(item, str):
                    found.append(ProducedText(node_id, texts, item))
                    texts += 1
    return found


@dataclass(frozen=True)
class ProducedBytes:
    """An image an output node sent over the socket (``SaveImageWebsocket``): it has no file in ComfyUI."""

    node_id: str
    filename: str
    content_type: str
    data: bytes


def socket_outputs(
    sent: list[SentImage],
    produced: dict[str, dict[str, Any]],
    graph: dict[str, Any],
    output_classes: set[str],
    frames_lost: bool,
) -> list[ProducedBytes]:
    """The sent images of the graph's output nodes, numbered per node in the order they came.

    Images of other nodes are live previews, not outputs. When the socket dropped during the prompt
    and an output node left no trace at all, its images may have been lost with the frames: raise, so
    the job runs again rather than end without them.
    """
    outputs_of = {
        node_id
        for node_id, node in graph.items()
        if isinstance(node, dict) and node.get("class_type") in output_classes
    }
    found: list[ProducedBytes] = []
    counts: dict[str, int] = {}
    for image in sent:
        if image.node_id not in outputs_of:
            continue
        n = counts[image.node_id] = counts.get(image.node_id, 0) + 1
        extension = mimetypes.guess_extension(image.content_type) or ".bin"
        found.append(
            ProducedBytes(image.node_id, f"websocket_{n:05d}_{extension}", image.content_type, image.data)
        )
    silent = outputs_of - set(produced) - set(counts)
    if frames_lost and silent:
        raise ComfyUnavailable(
            f"the socket dropped; output nodes {sorted(silent)} may have lost their images"
        )
    return found


def _content_type(filename: str, reported: str | None) -> str:
    guessed, _ = mimetypes.guess_type(filename)
    return guessed or (reported or "application/octet-stream").split(";")[0]


class OutputUploader:
    def __init__(
        self, comfy: ComfyClient, artifacts: ArtifactStore, before_put: Callable[[], Awaitable[None]]
    ) -> None:
        self._comfy = comfy
        self._artifacts = artifacts
        # Raises when the attempt may no longer write (its lease is gone).
        self._before_put = before_put

    async def upload(
        self,
        owner: str,
        job_id: str,
        attempt: int,
        outputs: dict[str, dict[str, Any]],
        sent: list[ProducedBytes] | tuple[()] = (),
    ) -> list[OutputFile]:
        stored: list[OutputFile] = []
        used: set[tuple[str, str]] = set()
        everything: list[ProducedFile | ProducedText | ProducedBytes] = [*list_outputs(outputs), *sent]
        for produced in sorted(everything, key=lambda p: p.node_id):
            if isinstance(produced, ProducedBytes):
                name, data, content_type, kind = (
                    produced.filename,
                    produced.data,
                    produced.content_type,
                    "output",
                )
            elif isinstance(produced, ProducedText):
                name, data, content_type, kind = (
                    f"text_{produced.index}.txt",
                    produced.text.encode(),
                    "text/plain; charset=utf-8",
                    "text",
                )
            else:
                data, reported = await self._comfy.view(
                    produced.filename, produced.subfolder, produced.folder_type
                )
                name, content_type, kind = (
                    produced.filename,
                    _content_type(produced.filename, reported),
                    produced.folder_type,
                )
            name = _unique(name, produced.node_id, used)
            key = output_key(owner, job_id, attempt, produced.node_id, name)
            await self._before_put()
            await asyncio.to_thread(self._artifacts.put_bytes, key, data, content_type)
            stored.append(
                OutputFile(
                    node_id=produced.node_id,
                    filename=name,
                    key=key,
                    content_type=content_type,
                    size=len(data),
                    kind=kind,
                )
            )
        return stored


def _unique(name: str, node_id: str, used: set[tuple[str, str]]) -> str:
    """A node may list one file twice (a preview and a save); keep both under distinct keys."""
    candidate, n = name, 1
    while (node_id, candidate) in used:
        stem, dot, ext = name.rpartition(".")
        candidate = f"{stem}-{n}.{ext}" if dot else f"{name}-{n}"
        n += 1
    used.add((node_id, candidate))
    return candidate
