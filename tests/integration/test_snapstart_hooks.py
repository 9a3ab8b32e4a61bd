"""The REST API function's SnapStart hooks: nothing fetched or connected before the snapshot, and after
a restore new SDK clients, a secret read again and a reseeded random generator."""

from __future__ import annotations

import random
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from moto import mock_aws

from functions.api import context, snapstart
from shared.aws.clients import AwsClients

pytestmark = pytest.mark.integration

# The discard port: nothing answers there, so any call the hooks made would fail.
NOWHERE = "http://127.0.0.1:9"


@pytest.fixture(autouse=True)
def fresh_process() -> Iterator[None]:
    """Each test starts as a new environment and leaves none of its clients to the next."""
    context._default_clients["clients"] = None
    context.default_context.cache_clear()
    snapstart._snapshot.clear()
    yield
    context._default_clients["clients"] = None
    context.default_context.cache_clear()
    snapstart._snapshot.clear()


def _clients() -> Any:
    clients = context._default_clients["clients"]
    assert clients is not None
    return clients


def _pooled_connections(client: Any) -> int:
    return len(client._endpoint.http_session._manager.pools)


def test_before_the_snapshot_the_clients_are_made_without_a_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", NOWHERE)
    monkeypatch.setenv(
        "WS_TOKEN_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:ws-AbCdEf"
    )
    monkeypatch.delenv("WS_TOKEN_SECRET", raising=False)

    snapstart.before_snapshot()

    clients = _clients()
    made = [getattr(clients, name) for name in snapstart.WARMED_CLIENTS]
    assert all(client.meta.endpoint_url == NOWHERE for client in made)
    # No connection pooled, so none is in the snapshot; the secret was not read either.
    assert [_pooled_connections(client) for client in made] == [0] * len(made)
    assert context.default_context().signing._cached is None


@pytest.fixture
def secrets_manager() -> Iterator[Any]:
    """moto in-process with nothing but what the test creates (the whole stack's tables are not needed)."""
    with mock_aws():
        yield AwsClients().secretsmanager


def test_after_a_restore_the_clients_are_new_and_the_secret_is_read_again(
    secrets_manager: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = secrets_manager
    arn = setup.create_secret(Name="ws-token", SecretString="version-1")["ARN"]
    monkeypatch.setenv("WS_TOKEN_SECRET_ARN", arn)
    monkeypatch.delenv("WS_TOKEN_SECRET", raising=False)
    snapstart.before_snapshot()
    before, snapshot_clients = context.default_context(), _clients()
    assert before.signing.keys().current == "version-1"
    # Rotated while the snapshot sat in the cache: the snapshot's value is now the previous one.
    setup.put_secret_value(SecretId=arn, SecretString="version-2")

    snapstart.after_restore()

    after, restored_clients = context.default_context(), _clients()
    assert after is not before
    assert restored_clients is not snapshot_clients
    assert restored_clients.session is not snapshot_clients.session
    assert restored_clients.dynamodb is not snapshot_clients.dynamodb
    # The service models read before the snapshot are kept: plain data, and most of a client's making.
    loader = snapshot_clients.session._session.get_component("data_loader")
    assert restored_clients.session._session.get_component("data_loader") is loader
    assert after.signing.keys().current == "version-2"
    assert before.signing.keys().current == "version-1"  # what a kept context would still have signed with


def test_after_a_restore_the_random_generator_is_reseeded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", NOWHERE)
    random.seed(1234)  # the state every environment restored from one snapshot would share
    shared_draw = random.random()
    random.seed(1234)

    snapstart.after_restore()

    assert random.random() != shared_draw


def test_the_hooks_are_registered_where_the_runtime_offers_them(monkeypatch: pytest.MonkeyPatch) -> None:
    registered: dict[str, list[Callable[[], None]]] = {"before": [], "after": []}
    runtime_library = types.ModuleType("snapshot_restore_py")
    runtime_library.register_before_snapshot = registered["before"].append  # type: ignore[attr-defined]
    runtime_library.register_after_restore = registered["after"].append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", runtime_library)

    assert snapstart.register() is True
    assert registered == {"before": [snapstart.before_snapshot], "after": [snapstart.after_restore]}


def test_without_the_runtime_library_nothing_is_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)
    assert snapstart.register() is False
    assert snapstart.REGISTERED is False  # this interpreter has no SnapStart
