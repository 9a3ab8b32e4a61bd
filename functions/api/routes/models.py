"""/v1/models: the model library jobs may name, as ComfyUI's folders lay it out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from functions.api.context import ApiContext
from functions.api.deps import Owner, get_context
from functions.api.models_service import ModelsService
from functions.api.problems import PROBLEM
from functions.api.schemas import ModelInfo, ModelList

router = APIRouter(prefix="/v1/models", tags=["models"])


@router.get("", response_model=ModelList, operation_id="list_models", responses={422: PROBLEM})
def list_models(
    owner: Owner,
    ctx: Annotated[ApiContext, Depends(get_context)],
    folder: Annotated[
        str | None,
        Query(
            pattern=r"^[A-Za-z0-9_.-]{1,64}$",
            description="Only this folder (one of ComfyUI's: checkpoints, loras, vae, ...)",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Models per page")] = 50,
    cursor: Annotated[
        str | None,
        Query(max_length=2048, pattern=r"^[!-~]+$", description="next_cursor of the previous page"),
    ] = None,
) -> ModelList:
    """The models a workflow may name, by folder and name, in name order, a page at a time.

    A model input (a checkpoint, LoRA, VAE, ... loader's) names a model by its `name` here; a job naming
    one that is not listed, nor built into the GPU image, is refused at submit with the closest names.
    """
    del owner  # any tenant may read the library; the key is still checked
    models, next_cursor = ModelsService(ctx).page(folder, limit, cursor)
    items = [
        ModelInfo(
            folder=m.ref.folder,
            name=m.ref.name,
            size=m.size,
            sha256=m.sha256,
            updated_at=datetime.fromtimestamp(m.updated_ms / 1000, tz=UTC),
        )
        for m in models
    ]
    return ModelList(items=items, next_cursor=next_cursor)
