"""boto3 clients, made on first use and shared by the adapters of one process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cached_property
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_apigateway import APIGatewayClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient


# Adaptive retries back off on throttling; the connect/read timeouts keep a stalled call from
# holding a Lambda or the runner's heartbeat for the SDK's default of a minute.
_CONFIG = Config(
    retries={"mode": "adaptive", "max_attempts": 5},
    connect_timeout=5,
    read_timeout=25,
    signature_version="s3v4",
)
# A custom endpoint (the local stack, LocalStack) is an address, not a domain buckets can be hosts of.
_PATH_STYLE = _CONFIG.merge(Config(s3={"addressing_style": "path"}))


# How the function this code runs as makes its sessions, where one process hosts several (the local
# stack runs every Lambda handler in its own process, each with its own role's credentials).
SessionFactory = Callable[[], boto3.session.Session]
_bound_factory: ContextVar[SessionFactory | None] = ContextVar("bound_aws_session_factory", default=None)


@contextmanager
def sessions_from(factory: SessionFactory) -> Iterator[None]:
    """Clients made inside this block, and not given a session, use a new session from ``factory``
    (a new one each, as boto3 sessions are not to be shared between threads)."""
    token = _bound_factory.set(factory)
    try:
        yield
    finally:
        _bound_factory.reset(token)


def default_session() -> boto3.session.Session:
    """A session from the bound factory, if any; else boto3's standard chain (environment, task role)."""
    return (_bound_factory.get() or boto3.session.Session)()


class AwsClients:
    """One boto3 session and its clients; region and endpoint come from the standard AWS variables."""

    def __init__(self, session: boto3.session.Session | None = None, endpoint_url: str | None = None) -> None:
        self._session = session
        # Taken now, not on first use: a client may first be used on another thread.
        self._factory = _bound_factory.get() or boto3.session.Session
        # None: boto3's own resolution, which honours AWS_ENDPOINT_URL.
        self._endpoint_url = endpoint_url

    @cached_property
    def session(self) -> boto3.session.Session:
        return self._session or self._factory()

    def _client(self, service: str, config: Config = _CONFIG) -> Any:
        return self.session.client(service, config=config, endpoint_url=self._endpoint_url)

    @cached_property
    def dynamodb(self) -> DynamoDBClient:
        return self._client("dynamodb")

    @cached_property
    def sqs(self) -> SQSClient:
        return self._client("sqs")

    @cached_property
    def apigateway(self) -> APIGatewayClient:
        return self._client("apigateway")

    @cached_property
    def secretsmanager(self) -> SecretsManagerClient:
        return self._client("secretsmanager")

    @cached_property
    def events(self) -> Any:
        """EventBridge."""
        return self._client("events")

    @cached_property
    def dynamodbstreams(self) -> Any:
        return self._client("dynamodbstreams")

    @cached_property
    def s3(self) -> S3Client:
        client = self._client("s3")
        if ".amazonaws.com" not in client.meta.endpoint_url:
            client = self._client("s3", _PATH_STYLE)
        return client

    def s3_for_transfers(self, connections: int) -> S3Client:
        """An S3 client of its own whose connection pool fits ``connections`` requests at once (a
        parallel ranged download); the shared one keeps botocore's default of 10."""
        config = _CONFIG.merge(Config(max_pool_connections=connections))
        client = self._client("s3", config)
        if ".amazonaws.com" not in client.meta.endpoint_url:
            client = self._client("s3", config.merge(_PATH_STYLE))
        return client
