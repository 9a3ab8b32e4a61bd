"""The warm-up workflow a runner runs before its first claim, so the first job finds its model loaded.

It goes through what a job goes through (its models made local, its outputs confined to a folder of
its own, removed afterwards), but belongs to nobody: nothing is written to S3 or DynamoDB, and a failure
is only logged: a runner that could not warm up still serves jobs, the first one just pays the load.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from gpu_runner.cleanup import ComfyFolders, remove_job_files
from gpu_runner.comfy import ComfyClient, ComfyRejected, ComfyUnavailable
from gpu_runner.job_models import make_models_local
from gpu_runner.log import logger
from gpu_runner.model_cache import ModelCache
from gpu_runner.staging import InputRejected, confine_outputs, new_job_folder
from shared.errors import ServiceUnavailable
from shared.file_inputs import FileInputCatalog
from shared.templates import UnknownTemplate, get_template

POLL_SECONDS = 0.5


class WarmupMisconfigured(ValueError):
    """The setting names no template and is no API-format workflow."""


def warmup_graph(setting: str) -> dict[str, Any]:
    """The setting's graph: JSON of an API-format workflow, or a template's name (its defaults)."""
    text = setting.strip()
    if text.startswith("{"):
        try:
            graph = json.loads(text)
        except json.JSONDecodeError as error:
            raise WarmupMisconfigured(f"the warm-up workflow is not valid JSON: {error}") from None
        if not isinstance(graph, dict):
            raise WarmupMisconfigured("the warm-up workflow is not a JSON object")
        return graph
    try:
        graph, _ = get_template(text).render({})
    except UnknownTemplate as unknown:
        raise WarmupMisconfigured(unknown.detail) from None
    return graph


async def warm_up(
    setting: str,
    comfy: ComfyClient,
    catalog: FileInputCatalog,
    cache: ModelCache | None,
    folders: ComfyFolders,
    timeout_seconds: float,
) -> bool:
    """Runs the warm-up workflow to its end; True when ComfyUI ran it."""
    started = time.monotonic()
    folder = new_job_folder()
    entry: dict[str, Any] | None = None
    try:
        graph = warmup_graph(setting)
        models = await make_models_local(cache, graph, catalog)
        try:
            confine_outputs(graph, catalog, folder)
            prompt_id = str(uuid.uuid4())
            await comfy.submit(prompt_id, graph)
            entry = await _finished(comfy, prompt_id, timeout_seconds)
        finally:
            models.release()
    except (WarmupMisconfigured, InputRejected, ComfyRejected) as error:
        logger.error("the warm-up workflow cannot run", extra={"error": str(error)})
        return False
    except (ComfyUnavailable, ServiceUnavailable, TimeoutError) as error:
        logger.warning("warm-up did not finish", extra={"error": str(error)})
        return False
    finally:
        if folders:
            produced = (entry or {}).get("outputs") or {}
            await asyncio.to_thread(remove_job_files, folders, folder, produced)
    status = ((entry or {}).get("status") or {}).get("status_str")
    logger.info("warmed up", extra={"seconds": round(time.monotonic() - started, 3), "status": status})
    return status == "success"


async def _finished(comfy: ComfyClient, prompt_id: str, timeout_seconds: float) -> dict[str, Any] | None:
    """ComfyUI's history entry once the prompt is done."""
    async with asyncio.timeout(timeout_seconds):
        while True:
            entry = await comfy.history(prompt_id)
            if entry and (entry.get("status") or {}).get("completed") is not None:
                return entry
            await asyncio.sleep(POLL_SECONDS)
