"""/v1/health."""

from __future__ import annotations

from fastapi import APIRouter

from functions.api.schemas import Health

router = APIRouter(prefix="/v1", tags=["health"])

VERSION = "0.1.0"


@router.get("/health", response_model=Health)
def health() -> Health:
    """Answers 200 while the API function runs; it touches no dependency, so it is cheap to poll."""
    return Health(version=VERSION)
