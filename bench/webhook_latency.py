"""8. Webhooks: from a job's terminal write to its receiver's 2xx, and deliveries per event.

One endpoint registered through the API, a receiver on 127.0.0.1 that verifies every signature with the
``standardwebhooks`` package and answers 204 at once, and near-zero jobs run one after another. The
latency of each is the receiver's arrival time minus the job's ``finished_at`` (the time the runner's
terminal write carries): the stream, the dispatcher, the attempts queue and the deliverer, end to end.
Deliveries per event counts every request the receiver got per distinct ``webhook-id``: 1.0 means nothing
was sent twice; fewer arrivals than jobs would mean an event was missed.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from bench.counters import per_job
from bench.harness import Bench
from bench.stats import summary
from bench.workflows import near_zero
from local.webhook_receiver import WebhookReceiver


def run(bench: Bench, jobs: int) -> dict[str, Any]:
    bench.ensure_runner()
    session = bench.client()
    receiver = WebhookReceiver().start()
    try:
        created = session.post(
            f"{bench.rest_url}/v1/webhooks", json={"url": receiver.url("/bench")}, timeout=30
        )
        created.raise_for_status()
        receiver.secrets["/bench"] = created.json()["secret"]
        warm = bench.submit(session, near_zero())
        bench.wait_terminal(session, [warm], 60)
        _wait_for(receiver, 1, 60)
        call_mark = bench.calls.mark()
        received_before = len(receiver.received)
        job_ids = []
        for _ in range(jobs):
            job_ids.append(bench.submit(session, near_zero()))
            bench.wait_terminal(session, job_ids[-1:], 60)
        _wait_for(receiver, received_before + jobs, 60)
        time.sleep(2)  # anything sent twice would arrive now
        calls = bench.calls.since(call_mark)
        mine = [r for r in receiver.received[received_before:] if r.body["data"]["job_id"] in set(job_ids)]
        latencies = [r.at - datetime.fromisoformat(r.body["data"]["finished_at"]).timestamp() for r in mine]
        event_ids = {r.headers.get("webhook-id") for r in mine}
        session.delete(f"{bench.rest_url}/v1/webhooks/{created.json()['webhook_id']}", timeout=30)
        return {
            "jobs": jobs,
            "events_received": len(event_ids),
            "events_missed": jobs - len(event_ids),
            "deliveries_per_event": round(len(mine) / len(event_ids), 3) if event_ids else None,
            "all_signatures_verified": all(r.verified for r in mine),
            "terminal_write_to_2xx_ms": summary(latencies, 1000),
            "calls_per_job": per_job(calls, jobs, bench.background()),
        }
    finally:
        receiver.stop()


def _wait_for(receiver: WebhookReceiver, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(receiver.received) < count and time.monotonic() < deadline:
        time.sleep(0.05)
