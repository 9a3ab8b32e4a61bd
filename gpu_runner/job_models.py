"""A job's models made local before its prompt goes to ComfyUI, and kept until the job ends.

A prefetched job (taken while another runs) comes through here too, so its models are fetched while the
GPU is busy with the job before it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gpu_runner.model_cache import CachedModel, ModelCache, ModelCorrupt, ModelNotFound
from gpu_runner.staging import InputRejected
from shared.errors import ServiceUnavailable
from shared.file_inputs import FileInputCatalog
from shared.model_refs import ModelUse, model_uses


class ModelRejected(InputRejected):
    """A model the job names cannot be had: the job fails with input_error naming it."""


@dataclass
class JobModels:
    held: list[CachedModel] = field(default_factory=list)
    milliseconds: int = 0

    @property
    def fetched(self) -> list[CachedModel]:
        return [model for model in self.held if model.fetched]

    def release(self) -> None:
        for model in self.held:
            model.release()
        self.held.clear()


async def make_models_local(
    cache: ModelCache | None, graph: dict[str, Any], catalog: FileInputCatalog
) -> JobModels:
    """Every model the graph names that ComfyUI does not have already, on local disk and held.

    Raises ModelRejected (permanent) or the cache's transient errors; whatever was held is let go then.
    """
    models = JobModels()
    if cache is None:
        return models
    needed: dict[Any, ModelUse] = {}
    for use in model_uses(graph, catalog):
        if use.model.name not in catalog.bundled_models.get(use.model.folder, ()):
            needed.setdefault(use.model, use)
    started = time.monotonic()
    try:
        results = await asyncio.gather(
            *(asyncio.to_thread(cache.acquire, ref) for ref in needed), return_exceptions=True
        )
        models.held = [result for result in results if isinstance(result, CachedModel)]
        _raise_first(results, list(needed.values()))
    except OSError as error:  # the cache's disk: another runner, or a later try, may do better
        models.release()
        raise ServiceUnavailable(f"the model cache failed: {error}", cause=type(error).__name__) from error
    except BaseException:
        models.release()
        raise
    models.milliseconds = int((time.monotonic() - started) * 1000)
    return models


def _raise_first(results: Sequence[object], uses: list[ModelUse]) -> None:
    """A permanent fault names its model and node; else the first transient one is raised as it is."""
    for result, use in zip(results, uses, strict=True):
        # ValueError: a name that would leave its folder (a job submitted before any catalog existed).
        if isinstance(result, ModelNotFound | ModelCorrupt | ValueError):
            where = f"input {use.input!r} of node {use.node_id} ({use.class_type})"
            raise ModelRejected(f"{where}: {result}", use.node_id) from result
    for result in results:
        if isinstance(result, BaseException):
            raise result
