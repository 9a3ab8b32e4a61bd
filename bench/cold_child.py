"""One cold start, run in a fresh interpreter: ``python -m bench.cold_child <handler name>``.

Imports the handler's module (timed), then builds the event its first request carries and calls it
(timed), and prints both as JSON. The event helpers are imported after the timed import so they do
not warm it.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

# Set by the parent (bench.cold_start), which knows the stack's keys; importing the stack here would
# put moto in the import-time report.
COLD_API_KEY_ID = "BENCH_COLD_API_KEY_ID"

MODULES = {
    "api": "functions.api.handler",
    "ws": "functions.ws.handler",
    "authorizer": "functions.ws.authorizer",
    "dlq": "functions.dlq.handler",
}


def _event(name: str) -> dict[str, Any]:
    import os
    import uuid

    from bench.workflows import near_zero
    from local.apigw.events import (
        ApiInfo,
        RestRequest,
        WsPeer,
        now_ms,
        rest_proxy_event,
        ws_authorizer_event,
        ws_message_event,
    )
    from shared.ws_tokens import issue_token

    api = ApiInfo()
    peer = WsPeer("BenchColdConn0=", now_ms(), "127.0.0.1", "bench", "127.0.0.1", {"owner": "bench-cold"})
    if name == "api":
        body = json.dumps({"workflow": near_zero()}).encode()
        headers = (("Content-Type", "application/json"), ("Idempotency-Key", uuid.uuid4().hex))
        request = RestRequest("POST", "/v1/jobs", headers, (), body, "127.0.0.1", "127.0.0.1")
        # The harness's key, whose tenant exists: the first request is a real submission, not a 403.
        key_id = os.environ[COLD_API_KEY_ID]
        return rest_proxy_event(api, request, api_key="k", api_key_id=key_id, resource_id="bench")
    if name == "ws":
        # No function runs at $connect: the routes function's first request is a client message.
        return ws_message_event(api, peer, route_key="ping", data='{"action": "ping"}', epoch_ms=now_ms())
    if name == "authorizer":
        token, _ = issue_token(os.environ["WS_TOKEN_SECRET"], "bench-cold", int(time.time()), 300)
        query = [("token", token)]
        return ws_authorizer_event(api, peer, [], query, request_id=uuid.uuid4().hex, epoch_ms=now_ms())
    if name == "dlq":
        record = {
            "messageId": str(uuid.uuid4()),
            "receiptHandle": "bench",
            "body": json.dumps({"v": 1, "job_id": "bench-cold-missing"}),
            "attributes": {"ApproximateReceiveCount": "5", "SentTimestamp": str(now_ms())},
            "messageAttributes": {},
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:comfy-jobs-dlq",
            "awsRegion": "us-east-1",
        }
        return {"Records": [record]}
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": "us-east-1",
        "resources": [],
        "detail": {},
    }


def main(name: str) -> None:
    started, cpu_started = time.perf_counter(), time.process_time()
    # __import__, not importlib.import_module: only the former reports the module itself to
    # ``-X importtime``, whose line for it bench.cold_start needs to tell its imports from later ones.
    __import__(MODULES[name])
    module = sys.modules[MODULES[name]]
    imported, cpu_imported = time.perf_counter(), time.process_time()
    from local.apigw.events import ApiInfo
    from local.apigw.invoke import LambdaFunction, make_context

    event = _event(name)
    context = make_context(LambdaFunction(module.handler, name), ApiInfo())
    called = time.perf_counter()
    result = module.handler(event, context)
    answered = time.perf_counter()
    print(
        json.dumps(
            {
                "import_s": imported - started,
                # CPU time: what the import costs, apart from waiting for a busy machine's cores.
                "import_cpu_s": cpu_imported - cpu_started,
                "first_request_s": answered - called,
                "result": str(result)[:200],
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
