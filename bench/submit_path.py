"""3. The submit path: the handler's own time in-process, and requests per second through the emulator.

In-process: ``functions.api.handler.handler`` called directly, on a Lambda-like worker thread, with the
proxy events API Gateway sends (``local.apigw.events.rest_proxy_event``). Through the emulator: several
threads, each its own HTTP session, POSTing as fast as answers come. Beside both, the raw cost of the
read of the key's job, the send and the job's conditional put, with boto3, serially and from as many threads.
No runner is up: the jobs stay queued and the queue is purged afterwards.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.floor import SUBMIT_CALLS, Floor
from bench.harness import API_KEY, Bench
from bench.stats import ratio, summary
from bench.workflows import near_zero
from local.apigw.events import ApiInfo, RestRequest, rest_proxy_event
from local.apigw.invoke import LambdaFunction, lambda_executor, make_context
from local.stack import api_key_id


def _event(bench: Bench) -> dict[str, Any]:
    body = json.dumps({"workflow": near_zero()}).encode()
    host = bench.rest_url.removeprefix("http://")
    request = RestRequest(
        method="POST",
        path="/v1/jobs",
        headers=(
            ("Host", host),
            ("Content-Type", "application/json"),
            ("x-api-key", API_KEY),
            ("Idempotency-Key", uuid.uuid4().hex),
        ),
        query=(),
        body=body,
        source_ip="127.0.0.1",
        domain_name=host,
    )
    return rest_proxy_event(
        ApiInfo(), request, api_key=API_KEY, api_key_id=api_key_id(API_KEY), resource_id="bench"
    )


def _in_process(bench: Bench, calls: int) -> tuple[list[float], list[float]]:
    """Handler calls and raw calls, alternated so both see tables of the same size."""
    from functions.api.handler import handler as api_handler

    # With the API function's role, as the stack's REST emulator calls it.
    handler = bench.stack.as_role("api", api_handler)
    function = LambdaFunction(handler, "api")
    floor = Floor(bench)

    def timed(event: dict[str, Any]) -> float:
        context = make_context(function, ApiInfo())
        started = time.perf_counter()
        result = handler(event, context)
        elapsed = time.perf_counter() - started
        if result["statusCode"] != 202:
            raise RuntimeError(f"the handler answered {result['statusCode']}: {result.get('body')}")
        return elapsed

    executor = lambda_executor(1, "bench-lambda")
    handler_times, raw_times = [], []
    try:
        for index in range(calls + 5):
            handled = executor.submit(timed, _event(bench)).result()
            raw = floor.submit_once()[0]
            if index >= 5:  # the first calls build clients and warm caches
                handler_times.append(handled)
                raw_times.append(raw)
    finally:
        executor.shutdown()
    return handler_times, raw_times


def _concurrent(clients: int, per_client: int, work: Any) -> float:
    """Requests per second from ``clients`` threads each doing ``work(state)`` ``per_client`` times."""
    barrier = threading.Barrier(clients + 1)

    def client(_: int) -> None:
        state = work(None)
        barrier.wait()
        for _ in range(per_client):
            work(state)

    with ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(client, i) for i in range(clients)]
        barrier.wait()
        started = time.perf_counter()
        for future in futures:
            future.result()
        elapsed = time.perf_counter() - started
    return clients * per_client / elapsed


def run(bench: Bench, calls: int, clients: int, per_client: int) -> dict[str, Any]:
    bench.stop_runners()
    handler_times, raw_times = _in_process(bench, calls)

    def via_emulator(session: Any) -> Any:
        if session is None:
            return bench.client()
        bench.submit(session, near_zero())
        return session

    def raw(state: Any) -> Any:
        if state is None:
            return Floor(bench)
        state.submit_once()
        return state

    emulator_rps = _concurrent(clients, per_client, via_emulator)
    emulator_serial_rps = _concurrent(1, per_client * 2, via_emulator)
    raw_rps = _concurrent(clients, per_client, raw)
    bench.purge_queue()
    handler_summary, raw_summary = summary(handler_times, 1000), summary(raw_times, 1000)
    return {
        "handler_ms": handler_summary,
        "raw_calls_ms": raw_summary,
        "raw_calls": SUBMIT_CALLS,
        "handler_own_ms_p50": round(handler_summary["p50"] - raw_summary["p50"], 3),
        "handler_to_raw_p50": ratio(handler_summary["p50"], raw_summary["p50"]),
        "clients": clients,
        "emulator_requests_per_s": round(emulator_rps, 1),
        "emulator_requests_per_s_one_client": round(emulator_serial_rps, 1),
        "raw_submits_per_s": round(raw_rps, 1),
        "emulator_to_raw": ratio(emulator_rps, raw_rps),
    }
