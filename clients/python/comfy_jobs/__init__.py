"""A client for the comfy-api-service job API: submit ComfyUI workflows, follow them, download outputs."""

from comfy_jobs.client import Client
from comfy_jobs.errors import (
    ApiError,
    ComfyJobsError,
    Conflict,
    ConnectionFailed,
    Forbidden,
    InvalidRequest,
    NotFound,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    Unauthorized,
    WaitTimeout,
)
from comfy_jobs.models import (
    TERMINAL,
    ErrorEvent,
    Event,
    Job,
    JobError,
    Output,
    Progress,
    Snapshot,
    StatusChange,
    Template,
    Upload,
)
from comfy_jobs.progress import ProgressBar

__all__ = [
    "TERMINAL",
    "ApiError",
    "Client",
    "ComfyJobsError",
    "Conflict",
    "ConnectionFailed",
    "ErrorEvent",
    "Event",
    "Forbidden",
    "InvalidRequest",
    "Job",
    "JobError",
    "NotFound",
    "Output",
    "Progress",
    "ProgressBar",
    "RateLimited",
    "ServerError",
    "ServiceUnavailable",
    "Snapshot",
    "StatusChange",
    "Template",
    "Unauthorized",
    "Upload",
    "WaitTimeout",
]
