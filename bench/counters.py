"""Counting the calls the service makes, from outside it.

AWS calls are counted where they land, in moto's WSGI application (it runs in this process), and
@connections posts where they land, in the API Gateway emulator's management API. Each process tags
its SDK clients with an app id (``AWS_SDK_UA_APP_ID``), which botocore puts in the User-Agent, so a
call can be told apart by caller without touching the caller's code.
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

from bench.capacity import Capacity, Units, response_json
from local.apigw.connections import ManagementApi

APP_ID = re.compile(r"\bapp/(\S+)")
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}


@dataclass(frozen=True)
class Call:
    caller: str
    service: str
    operation: str
    resource: str
    # Items written: a transaction or batch writes several.
    items: int = 1
    # What DynamoDB bills for it (bench.capacity); None for other services.
    units: Units | None = None
    # The request's payload: SQS and EventBridge bill by 64 KB chunks of it.
    payload_bytes: int = 0
    # Entries in the request: PutEvents bills each event, SendMessageBatch each message's chunks.
    entries: int = 1
    extra: dict[str, Any] = field(default_factory=dict)


def caller_of(user_agent: str) -> str:
    found = APP_ID.search(user_agent)
    return found.group(1) if found else "untagged"


def _resource(body: dict[str, Any]) -> str:
    if "QueueUrl" in body:
        return "queue " + str(body["QueueUrl"]).rsplit("/", 1)[-1]
    if "ShardIterator" in body or "StreamArn" in body:  # DynamoDB Streams: the table whose stream it is
        stream = str(body.get("StreamArn") or body["ShardIterator"]).partition("|")[0]
        return "stream " + stream.split(":table/", 1)[-1].split("/stream/", 1)[0]
    if "Entries" in body and "EventBusName" in str(body["Entries"][:1]):
        return "bus " + str(body["Entries"][0]["EventBusName"])
    if "TransactItems" in body:
        tables = {next(iter(item.values())).get("TableName", "") for item in body["TransactItems"]}
        return " + ".join(sorted(tables))
    table = str(body.get("TableName", ""))
    return f"{table}/{body['IndexName']}" if "IndexName" in body else table


# The X-Amz-Target prefix of each JSON-protocol service the stack calls.
SERVICES = {
    "DynamoDB_20120810": "dynamodb",
    "DynamoDBStreams_20120810": "dynamodbstreams",
    "AmazonSQS": "sqs",
    "AWSEvents": "events",
}


def _entries(operation: str, body: dict[str, Any]) -> int:
    if operation == "PutEvents":
        return len(body.get("Entries") or [])
    if operation == "SendMessageBatch":
        return len(body.get("Entries") or [])
    return 1


def _items(operation: str, body: dict[str, Any]) -> int:
    if operation == "TransactWriteItems":
        return len(body.get("TransactItems") or [])
    if operation == "BatchWriteItem":
        return sum(len(v) for v in (body.get("RequestItems") or {}).values())
    return 1


def _s3_operation(method: str, path: str, query: str) -> tuple[str, str]:
    parts = path.lstrip("/").split("/", 1)
    bucket, has_key = parts[0], len(parts) > 1 and bool(parts[1])
    names = {"PUT": "PutObject", "GET": "GetObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}
    if not has_key:
        return ("ListObjectsV2" if method == "GET" else f"{method} bucket"), bucket
    if method == "POST" and "delete" in query:
        return "DeleteObjects", bucket
    return names.get(method, method), bucket


class CallLog:
    """Every request moto serves, in order; read a slice with ``mark()`` and ``since()``."""

    def __init__(self, capacity: Capacity | None = None) -> None:
        self._lock = threading.Lock()
        self.calls: list[Call] = []
        self._capacity = capacity

    def mark(self) -> int:
        with self._lock:
            return len(self.calls)

    def since(self, mark: int) -> list[Call]:
        with self._lock:
            return self.calls[mark:]

    def _add(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)

    def install(self) -> None:
        """Wraps moto's WSGI application; call before the stack starts its moto server."""
        original = DomainDispatcherApplication.__call__
        log = self

        def counted(
            app: DomainDispatcherApplication, environ: dict[str, Any], start_response: Callable[..., Any]
        ) -> Iterable[bytes]:
            target = environ.get("HTTP_X_AMZ_TARGET", "")
            caller = caller_of(environ.get("HTTP_USER_AGENT", ""))
            if not target:
                operation, resource = _s3_operation(
                    environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", "")
                )
                if not resource.startswith("moto-api"):
                    log._add(Call(caller, "s3", operation, resource))
                return original(app, environ, start_response)
            length = int(environ.get("CONTENT_LENGTH") or 0)
            raw = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(raw)
            service, operation = target.split(".", 1)
            name = SERVICES.get(service, service.lower())
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {}
            capacity = log._capacity if name == "dynamodb" else None
            snapshot = capacity.before_write(operation, body) if capacity else []
            result = original(app, environ, start_response)
            chunks = list(result)
            units = None
            if capacity is not None:
                units = capacity.after_write(snapshot)
                reads = capacity.reads(operation, body, response_json(chunks))
                units.read_units, units.largest_item_bytes = (
                    reads.read_units,
                    max(units.largest_item_bytes, reads.largest_item_bytes),
                )
            if operation == "ReceiveMessage" and b'"Messages"' not in b"".join(chunks):
                # Empty long polls are the runner waiting, not work done for a job.
                operation = "ReceiveMessage (empty)"
            call = Call(
                caller,
                name,
                operation,
                _resource(body),
                _items(operation, body),
                units=units,
                payload_bytes=len(raw),
                entries=_entries(operation, body),
            )
            log._add(call)
            return chunks

        setattr(DomainDispatcherApplication, "__call__", counted)  # noqa: B010


class PostLog:
    """@connections posts by caller and HTTP status."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.posts: list[tuple[str, int]] = []
        # The size of each post, in the same order: WebSocket messages are billed in 32 KB units.
        self.sizes: list[int] = []

    def mark(self) -> int:
        with self._lock:
            return len(self.posts)

    def since(self, mark: int) -> list[tuple[str, int]]:
        with self._lock:
            return self.posts[mark:]

    def sizes_since(self, mark: int) -> list[int]:
        with self._lock:
            return self.sizes[mark:]

    def install(self) -> None:
        """Wraps the emulator's post handler; call before the stack builds its routes."""
        original = ManagementApi.post_to_connection
        log = self

        async def counted(api: ManagementApi, request: web.Request) -> web.Response:
            size = len(await request.read())
            response = await original(api, request)
            with log._lock:
                log.posts.append((caller_of(request.headers.get("User-Agent", "")), response.status))
                log.sizes.append(size)
            return response

        setattr(ManagementApi, "post_to_connection", counted)  # noqa: B010


def per_job(calls: list[Call], jobs: int, background: set[str]) -> list[dict[str, Any]]:
    """Calls per job by caller, operation and resource; ``background`` resources are marked as such."""
    counts: Counter[tuple[str, str, str]] = Counter()
    items: Counter[tuple[str, str, str]] = Counter()
    for call in calls:
        key = (call.caller, call.operation, call.resource)
        counts[key] += 1
        items[key] += call.items
    rows = []
    for (caller, operation, resource), count in sorted(counts.items()):
        is_background = resource in background or operation == "ReceiveMessage (empty)"
        rows.append(
            {
                "caller": caller,
                "operation": operation,
                "resource": resource,
                "per_job": round(count / jobs, 3),
                "items_per_job": round(items[caller, operation, resource] / jobs, 3),
                "background": is_background,
            }
        )
    return rows


def dynamodb_writes(calls: list[Call], background: set[str]) -> tuple[int, int]:
    """(write requests, items written) to DynamoDB, leaving out background resources."""
    chosen = [c for c in calls if c.operation in WRITES and c.resource not in background]
    return len(chosen), sum(c.items for c in chosen)
