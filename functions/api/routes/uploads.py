"""/v1/uploads: a presigned POST for an input file, which a job then names as ``upload://<upload_id>``."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from fastapi import APIRouter

from functions.api.deps import Context, Owner
from functions.api.json_body import JSON_BODY_RESPONSES, JsonBodyRoute
from functions.api.schemas import UploadRequest, UploadTicket
from shared.errors import FieldError, InvalidRequest
from shared.names import input_key
from shared.uploads import UPLOAD_CONTENT_TYPES, UPLOAD_SCHEME

router = APIRouter(prefix="/v1", tags=["uploads"], route_class=JsonBodyRoute)


@router.post(
    "/uploads",
    status_code=201,
    response_model=UploadTicket,
    responses=JSON_BODY_RESPONSES,
)
def create_upload(body: UploadRequest, owner: Owner, ctx: Context) -> UploadTicket:
    """Get a form upload for an input file (an image for LoadImage, a video, an audio clip).

    POST `multipart/form-data` to `url` with every one of `fields`, then the bytes in a last field
    named `file`, within the ticket's lifetime; then use `ref` as a workflow input or a template param.
    The storage itself refuses another content type, or a file over `max_bytes`.
    """
    content_type = body.content_type.split(";")[0].strip().lower()
    if content_type not in UPLOAD_CONTENT_TYPES:
        allowed = ", ".join(sorted(UPLOAD_CONTENT_TYPES))
        raise InvalidRequest(
            f"Uploads of {content_type!r} are not accepted; use one of {allowed}.",
            [FieldError("/content_type", f"not one of {allowed}")],
        )
    settings = ctx.settings
    upload_id = secrets.token_urlsafe(16)
    ttl = settings.upload_url_ttl_seconds
    url, fields = ctx.artifacts.presign_post(
        input_key(owner, upload_id), content_type, settings.upload_max_bytes, ttl
    )
    return UploadTicket(
        upload_id=upload_id,
        ref=UPLOAD_SCHEME + upload_id,
        url=url,
        fields=fields,
        max_bytes=settings.upload_max_bytes,
        expires_at=datetime.fromtimestamp(int(ctx.clock()) + ttl, tz=UTC),
    )
