"""What a request needs from the outside world, built once per Lambda container."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from functions.api.tenancy import TenantDirectory
from shared.aws.catalog import CachedCatalog, CatalogStore
from shared.aws.clients import AwsClients
from shared.aws.connections import ConnectionStore
from shared.aws.events import EventLog
from shared.aws.jobs import JobStore
from shared.aws.push import ConnectionPoster
from shared.aws.queue import JobQueue
from shared.aws.storage import ArtifactStore
from shared.aws.tenants import TenantStore
from shared.secrets import SigningSecret
from shared.settings import ApiSettings


@dataclass
class ApiContext:
    settings: ApiSettings
    store: JobStore
    queue: JobQueue
    artifacts: ArtifactStore
    signing: SigningSecret
    tenants: TenantDirectory
    # What the runners' ComfyUI reads from its folders; None: file inputs are left to the runner.
    catalog: CachedCatalog | None = None
    connections: ConnectionStore | None = None
    # None when no WebSocket API is configured: nobody can be subscribed.
    poster: ConnectionPoster | None = None
    # Each job's event log, read by GET /v1/jobs/{id}/events.
    events: EventLog | None = None
    clock: Callable[[], float] = field(default=time.time)

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    @classmethod
    def from_settings(cls, settings: ApiSettings, clients: AwsClients | None = None) -> ApiContext:
        clients = clients or AwsClients()
        return cls(
            settings=settings,
            store=JobStore(clients.dynamodb, settings.jobs_table_name, settings.idempotency_table_name),
            queue=JobQueue(clients.sqs, settings.jobs_queue_url),
            artifacts=ArtifactStore(clients.s3, settings.bucket_name),
            signing=SigningSecret(
                settings.ws_token_secret, settings.ws_token_secret_arn, lambda: clients.secretsmanager
            ),
            tenants=TenantDirectory(
                TenantStore(clients.dynamodb, settings.tenants_table_name), settings.tenant_cache_seconds
            ),
            catalog=CachedCatalog(
                CatalogStore(clients.s3, settings.bucket_name), settings.catalog_cache_seconds
            ),
            connections=ConnectionStore(clients.dynamodb, settings.connections_table_name),
            poster=(
                ConnectionPoster(settings.websocket_management_url, session=clients.session)
                if settings.websocket_management_url
                else None
            ),
            events=EventLog(clients.dynamodb, settings.job_events_table_name),
        )


@lru_cache(maxsize=1)
def default_context() -> ApiContext:
    return ApiContext.from_settings(ApiSettings())
