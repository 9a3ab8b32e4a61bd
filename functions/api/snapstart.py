"""Lambda SnapStart hooks of the REST API function (python3.12 with the ``snapStart`` option).

Lambda snapshots the function once initialised and starts every new environment from that same memory,
so what is in the snapshot must be worth sharing and nothing in it may need to be unique or fresh:

* before the snapshot, the request context is built and its SDK clients made, so their modules and
  the services' models are loaded into the snapshot; no call is made, so no connection, credential or
  secret value is captured;
* after each restore, the random generator is reseeded (every environment would otherwise draw the
  same numbers) and the context is built again on new clients and a new session (credentials resolved
  anew, no pooled connection, empty caches: the WebSocket token and cursor secret are read again on
  first use, tenants looked up again); only the loaded service models, which are plain data, are kept.

``uuid.uuid4`` and ``secrets`` read the operating system's entropy on each call, so they need nothing.
The hooks library (``snapshot_restore_py``) comes with Lambda's Python runtimes from 3.12 on; elsewhere
nothing is registered and the function starts as before.
"""

from __future__ import annotations

import random
from typing import Any

import boto3
import botocore.session

from functions.api.context import default_context, use_clients
from shared.aws.clients import AwsClients

# What a request may call; made before the snapshot so that their service models are in it.
WARMED_CLIENTS = ("dynamodb", "sqs", "s3", "secretsmanager")
# The botocore loader (the service models read from disk), kept from the snapshot for restored sessions.
_snapshot: dict[str, Any] = {}


def _session(loader: Any = None) -> boto3.session.Session:
    core = botocore.session.get_session()
    if loader is not None:
        core.register_component("data_loader", loader)
    return boto3.session.Session(botocore_session=core)


def _build(session: boto3.session.Session) -> AwsClients:
    clients = AwsClients(session=session)
    for name in WARMED_CLIENTS:
        getattr(clients, name)
    use_clients(clients)
    default_context()
    return clients


def before_snapshot() -> None:
    session = _session()
    _snapshot["loader"] = session._session.get_component("data_loader")
    _build(session)


def after_restore() -> None:
    random.seed()
    _build(_session(_snapshot.get("loader")))


def register() -> bool:
    """Registers the hooks where the runtime offers them; False elsewhere."""
    try:
        from snapshot_restore_py import (
            register_after_restore,
            register_before_snapshot,
        )
    except ImportError:
        return False
    register_before_snapshot(before_snapshot)
    register_after_restore(after_restore)
    return True


REGISTERED = register()
