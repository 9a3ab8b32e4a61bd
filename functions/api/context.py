"""What a request needs from the outside world, built once per Lambda container."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from functions.api.routing import JobRouter, TierOf, models_named_by
from functions.api.tenancy import TenantDirectory
from shared.aws.catalog import CachedCatalog, CatalogStore
from shared.aws.clients import AwsClients
from shared.aws.connections import ConnectionStore
from shared.aws.events import EventLog
from shared.aws.in_flight import InFlightJobs
from shared.aws.jobs import JobStore
from shared.aws.models import CachedModelNames, ModelLibrary
from shared.aws.pool_queues import JobSender, PoolQueues
from shared.aws.push import ConnectionPoster
from shared.aws.storage import ArtifactStore
from shared.aws.tenants import TenantStore
from shared.aws.webhook_queue import AttemptQueue
from shared.aws.webhooks import WebhookStore
from shared.pools import PoolDirectory, parse_tier_policies
from shared.secrets import SigningSecret
from shared.settings import ApiSettings
from shared.webhooks.urls import Resolver, resolve_host


@dataclass
class ApiContext:
    settings: ApiSettings
    store: JobStore
    queue: JobSender
    artifacts: ArtifactStore
    signing: SigningSecret
    tenants: TenantDirectory
    # What the runners' ComfyUI reads from its folders; None: file inputs are left to the runner.
    catalog: CachedCatalog | None = None
    # The model library: listed by GET /v1/models, and what a job's models are checked against.
    models: ModelLibrary | None = None
    model_names: CachedModelNames | None = None
    connections: ConnectionStore | None = None
    # None when no WebSocket API is configured: nobody can be subscribed.
    poster: ConnectionPoster | None = None
    # Each job's event log, read by GET /v1/jobs/{id}/events.
    events: EventLog | None = None
    # Webhook endpoints and deliveries; the queue takes redeliveries.
    webhooks: WebhookStore | None = None
    attempts: AttemptQueue | None = None
    resolve: Resolver = resolve_host
    clock: Callable[[], float] = field(default=time.time)
    # Pools, lanes and tier limits; None: every job goes to ``queue``, unlimited (no pools declared).
    router: JobRouter | None = None

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    @classmethod
    def from_settings(cls, settings: ApiSettings, clients: AwsClients | None = None) -> ApiContext:
        clients = clients or AwsClients()
        pools = PoolDirectory.from_settings(
            settings.pool_routes, settings.jobs_queue_url, settings.priority_queue_url
        )
        tenant_store = TenantStore(clients.dynamodb, settings.tenants_table_name)
        catalog = CachedCatalog(
            CatalogStore(clients.s3, settings.bucket_name), settings.catalog_cache_seconds
        )
        router = JobRouter(
            pools,
            parse_tier_policies(settings.tier_policies),
            TierOf(tenant_store, settings.tenant_cache_seconds),
            InFlightJobs(clients.dynamodb, settings.jobs_table_name),
            settings.tier_limit_retry_after_seconds,
            # The models a workflow names, by the model inputs the runners published.
            models_of=models_named_by(catalog),
        )
        models = ModelLibrary(
            clients.s3, settings.models_bucket or settings.bucket_name, settings.models_prefix
        )
        return cls(
            settings=settings,
            store=JobStore(clients.dynamodb, settings.jobs_table_name),
            queue=PoolQueues(clients.sqs, pools),
            artifacts=ArtifactStore(clients.s3, settings.bucket_name),
            signing=SigningSecret(
                settings.ws_token_secret, settings.ws_token_secret_arn, lambda: clients.secretsmanager
            ),
            tenants=TenantDirectory(tenant_store, settings.tenant_cache_seconds),
            catalog=catalog,
            models=models,
            model_names=CachedModelNames(models, settings.models_cache_seconds),
            connections=ConnectionStore(clients.dynamodb, settings.connections_table_name),
            webhooks=WebhookStore(clients.dynamodb, settings.webhooks_table_name),
            attempts=AttemptQueue(clients.sqs, settings.webhook_queue_url),
            poster=(
                ConnectionPoster(settings.websocket_management_url, session=clients.session)
                if settings.websocket_management_url
                else None
            ),
            router=router,
            events=EventLog(clients.dynamodb, settings.job_events_table_name),
        )


# The clients the next default context is built on; None: new ones from boto3's standard chain.
_default_clients: dict[str, AwsClients | None] = {"clients": None}


@lru_cache(maxsize=1)
def default_context() -> ApiContext:
    return ApiContext.from_settings(ApiSettings(), _default_clients["clients"])


def use_clients(clients: AwsClients) -> None:
    """Rebuilds the default context on these clients at its next use (a SnapStart restore makes new
    ones: ``functions.api.snapstart``)."""
    _default_clients["clients"] = clients
    default_context.cache_clear()
