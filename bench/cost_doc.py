"""``python -m bench.cost_doc RESULTS.json``: render ``docs/cost.md`` from a counted run.

RESULTS.json is what ``python -m bench`` wrote (its ``cost`` section). The run is kept beside the doc as
``docs/cost-run.json`` (with the figure before the cuts, which no later run can count again), and the
doc is rendered from that file alone: ``tests/unit/test_cost_doc.py`` renders it again and compares, so
the doc cannot drift from the run, the price table or this renderer. ``--check`` only compares.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bench.cost_model import LOG_PARTS
from bench.prices import ACCESS_LOG_LINE_BYTES, LAMBDA_PLATFORM_LOG_BYTES_AT_INFO, PRICES

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "cost.md"
RUN = ROOT / "docs" / "cost-run.json"
SCENARIOS = ("websocket", "websocket-progress", "polling")
TARGET_USD = 25.0

UNIT_LABELS = {
    "rest_requests": "API Gateway REST requests",
    "ws_messages": "WebSocket messages (32 KB units, both ways)",
    "ws_connection_minutes": "WebSocket connection minutes",
    "lambda_requests": "Lambda requests",
    "lambda_gb_seconds": "Lambda GB-seconds",
    "dynamodb_write_units": "DynamoDB write units, tables",
    "dynamodb_index_write_units": "DynamoDB write units, indexes",
    "dynamodb_read_units": "DynamoDB read units",
    "dynamodb_stream_records": "DynamoDB Streams records",
    "dynamodb_stream_reads": "DynamoDB Streams reads (outside triggers)",
    "sqs_requests": "SQS requests (64 KB units)",
    "eventbridge_events": "EventBridge events",
    "s3_put_requests": "S3 PUT/POST/LIST requests",
    "s3_get_requests": "S3 GET/HEAD requests",
    "xray_traces": "X-Ray traces",
    "log_gigabytes": "CloudWatch Logs ingested (bytes per job)",
}


def _num(value: float) -> str:
    if value == int(value):
        return f"{int(value)}"
    return f"{value:.3f}".rstrip("0").rstrip(".") if value < 10 else f"{value:.1f}"


CUTS = [
    "## What was cut, and what each keeps",
    "",
    "- Submission is one conditional put: the SQS message goes first, then the job, so a job item",
    "  always has its message and nothing needs re-sending (no enqueue mark, its index or the sweeper);",
    "  the `Idempotency-Key` names the job (a UUID from owner, key and generation), so a retry is one",
    "  strongly consistent read and a replay is rebuilt from the job as created: no idempotency",
    "  record, no transaction (docs/submission.md). A job carries `in_flight` (a sparse index) only",
    "  when its tenant's tier limits jobs in flight.",
    "- Subscriptions are keyed by job: the fan-out reads a job's subscribers from its partition, no",
    "  index; nothing is deleted when a socket closes (TTL, and a post answering 410 deletes that one);",
    "  `$connect` is the authorizer and a mock integration, and there is no `$disconnect` route.",
    "- A client that knows where the job is subscribes with `after` (the submit answer carries `seq`):",
    "  no snapshot, and nothing at all comes back when nothing was missed.",
    "- Progress frames: each subscriber gets them at the rate it asks for (`progress_rate` in",
    "  `subscribe`, at most 10 a second, the default) and only when the percent moved; `Client.wait`",
    "  asks 0.2 a second when a callback is there to show them, and none without one; status frames",
    "  always go to every subscriber, and the fan-out reads the subscribers for every frame.",
    "- The runner writes a job three times at the deployed settings: claim, running and the terminal",
    "  state. A lease renewal (with its visibility change) comes every third of the 120 s visibility,",
    "  progress is stored every 15 s, and a model fetch's time is written early only when a model was",
    "  fetched: a 10 s job needs none of them. SQS: send, receive, delete.",
    "- The event log takes at most one write a job, the progress milestone at 50 %, and only once the",
    "  attempt has run 15 s (a 10 s job logs nothing: its late reader gets the outcome); a replay reads",
    "  the latest `running` and the terminal state from the job item (cost-previews.md says how).",
    "- A cancel is heard on the fan-out's own reads of the job's subscribers (a cancel mark in the",
    "  job's partition, confirmed by one read of the job); the runner's 1 s cancel poll runs only while",
    "  no lookup came (docs/cancel.md).",
    "- X-Ray: a sampling rule traces a fixed share of REST requests (`xraySamplingRate`, 1 %, no",
    "  reservoir) and the functions pass its decision through; before, every invocation was a trace.",
    "- Lambda's START/END/REPORT lines are off (`lambdaSystemLogLevel` WARN; errors still log); a job's",
    "  routine runner lines are DEBUG, leaving one, `finished` (with the job's timings and GPU cost),",
    "  and its EMF document; the WebSocket functions write no routine INFO line; a function's line",
    "  leaves out what its log group says (function name, ARN, memory) and an unsampled trace id; the",
    "  stages' access log lines are compact JSON (epoch time, short names, no spaces).",
    "- The REST API function has 512 MB (`apiMemoryMiB`), not 1 GB: a request spends about 10 ms of CPU",
    "  and the rest waiting on DynamoDB, SQS and S3, and `Prefer: wait` is all waiting, so half the",
    "  memory is half the GB-seconds; its cold start gets half the CPU for its imports.",
    "- The client follows a job for one REST request: the submit answer carries the WebSocket URL",
    "  (`Prefer: websocket`), and the terminal `job.status` frame carries the whole job.",
    "- Indexes project what their queries read: `by-owner` keys only (a listing reads its page with",
    "  BatchGetItem); the workflow is stored deflated, so every write of the job item is smaller.",
    "- `Prefer: wait` reads after 0.25 s, backing off to 2 s, eventually consistent between the first",
    "  and the last read (a stale read can only show an earlier state). What it costs is the function",
    "  held while the job runs: about $6.7 per million jobs for each second waited at 512 MB, which is why",
    "  the client library follows the WebSocket and polls only when it cannot.",
    "",
    "## What is left",
    "",
    "- S3: one PUT per output ($5 per million outputs) is the floor of any design that stores outputs;",
    "  the REST request that submits ($3.50) is the floor of a REST API.",
    "- WebSocket messages: the subscribe, the `running` and terminal status frames, and the progress",
    "  frames at the client's rate (each a message: about $1 per million jobs for each frame a job).",
    "- EventBridge: every transition on the bus (issue 15), one event each, and the stream's",
    "  dispatcher invocation that puts it there.",
    "- DynamoDB: the job's put (and its by-owner index entry), the subscription, the runner's claim,",
    "  running and finish writes; reads: the subscriber lookups of the fan-out (one a frame, half a",
    "  read unit each), the key's job at submit and the job at subscribe.",
    "- Lambda time here is measured on a shared two-core machine with moto as the AWS behind it:",
    "  slower than Lambda against DynamoDB, so the GB-seconds are an upper bound.",
    "",
    "What previews, the event log and resuming add for a client that asks for them is counted by hand",
    "in [cost-previews.md](cost-previews.md).",
]


def _units_row(name: str, runs: dict[str, Any]) -> list[str]:
    cells = [UNIT_LABELS.get(name, name)]
    for scenario in SCENARIOS:
        units = runs[scenario]["units_per_job"]
        amount = (
            sum(units.get(p, 0.0) for p in LOG_PARTS) if name == "log_gigabytes" else units.get(name, 0.0)
        )
        cells.append(_num(round(amount, 3)))
    for scenario in SCENARIOS:
        cells.append(f"${runs[scenario]['usd_per_million_jobs'].get(name, 0.0):.2f}")
    return cells


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def render(run: dict[str, Any]) -> str:
    cost, before = run["cost"], run["before"]
    reference, deployment = cost["reference"], cost["deployment"]
    totals = {s: cost[s]["usd_per_million_jobs"]["total"] for s in SCENARIOS}
    met = "within" if totals["websocket"] <= TARGET_USD else "still above"
    lines = [
        "# Control-plane cost per million jobs",
        "",
        "<!-- Generated by `python -m bench.cost_doc` from docs/cost-run.json; do not edit by hand. -->",
        "",
        "What the service itself costs in AWS for each job, from the calls a run of the reference job",
        "really made, counted where they landed, times the price table in `bench/prices.py`.",
        f"Measured {run['measured']} (`make bench`, {run['mode']} run, "
        f"{cost['websocket']['jobs']} jobs per client).",
        "",
        f"**${totals['websocket']:.2f} per million reference jobs with one WebSocket subscriber**, "
        f"{met} the target of ${TARGET_USD:.0f}; ${totals['websocket-progress']:.2f} when that subscriber",
        f"also shows progress (frames at 0.2 a second); ${totals['polling']:.2f} for a client that only",
        f"polls with `Prefer: wait`. Before the cuts below: ${before['websocket']:.2f} and "
        f"${before['polling']:.2f} (counted the same way, {before['measured']}).",
        "",
        "Not included: the GPU instances (the dominant cost, reported on every job as `gpu_seconds` and",
        "`gpu_cost_usd`), S3 storage and data transfer, NAT gateway hours and traffic, CloudWatch metrics",
        "(billed per metric and month, not per job), and what runs whether or not jobs do: the idle",
        "runner's long polls, the alarms.",
        "",
        "## The reference job",
        "",
        "A job submitted by the Python client library (`clients/python`) with an `Idempotency-Key`: the",
        f"shipped `txt2img` template's graph ({reference['workflow_bytes']} bytes of workflow), "
        f"{reference['steps']} sampler steps",
        f"taking {reference['seconds']:.0f} s on the GPU, one output image that the client downloads by",
        "its presigned URL. Three clients:",
        "",
        "- **websocket**: `Client.submit` (which asks for the WebSocket URL in the same request,",
        "  `Prefer: websocket`), then `Client.wait()`, which subscribes after the submit answer's `seq`",
        "  (no snapshot) for the status changes only, since no callback would show progress, and ends on",
        "  the terminal `job.status` frame (it carries the job, output URLs included: no GET at the",
        "  end), then `Client.download`.",
        "- **websocket-progress**: the same with `Client.wait(on_event=...)`, which asks for progress",
        "  frames at 0.2 a second (a bar that moves every five seconds).",
        "- **polling**: `Client.submit`, then `Client.get(wait=20)` until the job ends (the deployed",
        "  function holds a request at most 5 s), then `Client.download`.",
        "",
        "## Per job and per million jobs",
        "",
    ]
    names = [n for n in PRICES if n != "log_gigabytes"] + ["log_gigabytes"]
    header = ["unit"] + [f"per job, {s}" for s in SCENARIOS] + [f"per million, {s}" for s in SCENARIOS]
    rows = [_units_row(n, cost) for n in names]
    rows.append(["**total**"] + [""] * len(SCENARIOS) + [f"**${totals[s]:.2f}**" for s in SCENARIOS])
    lines += _table(header, rows)
    traced = (
        "every Lambda invocation starts its own trace."
        if deployment["lambdas_traced"]
        else "the functions follow its decision (pass-through tracing)."
    )
    platform = (
        "at system log level INFO."
        if deployment["lambda_platform_logs"]
        else "only at INFO, and the stack sets WARN."
    )
    lines += [
        "",
        "How the units are counted (`bench/capacity.py`, `bench/cost_model.py`): a DynamoDB write is",
        "billed on the larger of the item before and after it (1 unit per started KB, twice in a",
        "transaction) and again on every index whose projected entry it adds, changes or removes; a",
        "read on the entries it reads (4 KB units, half when eventually consistent). Lambda time is each",
        "invocation's duration measured here (a shared machine: slower than Lambda) at the memory the",
        f"template gives the function ({_memory(deployment)}), on arm64. X-Ray: the REST API is",
        f"sampled at {deployment['rest_trace_rate']:.0%} by its sampling rule and {traced} Logs: what the",
        "handlers and the runner wrote at the deployed log level (EMF metrics included), API Gateway's",
        f"access log lines ({_access_lines(deployment)}), and Lambda's START/END/REPORT lines",
        f"(about {LAMBDA_PLATFORM_LOG_BYTES_AT_INFO} bytes an invocation), written {platform}",
        "",
        "## Calls per job, websocket client",
        "",
    ]
    lines += _table(
        ["caller", "call", "resource", "per job"],
        [
            [row["caller"], row["operation"], row["resource"], _num(row["per_job"])]
            for row in cost["websocket"]["calls_per_job"]
        ],
    )
    lines += ["", "Lambda invocations per job, websocket client:", ""]
    lines += _table(
        ["function", "invocations", "mean ms here", "memory MB"],
        [
            [name, _num(f["invocations"]), f"{f['mean_ms']:.1f}", str(f["memory_mb"])]
            for name, f in cost["websocket"]["lambda_per_job"].items()
        ],
    )
    lines += ["", "## Prices", ""]
    lines += _table(
        ["unit", "USD per million units"],
        [[label, f"{price * 1_000_000:g}"] for _, (price, label) in PRICES.items()],
    )
    lines += ["", *CUTS]
    return "\n".join(lines) + "\n"


def _access_lines(deployment: dict[str, Any]) -> str:
    lines = deployment.get("access_log_line_bytes") or {}
    if not lines:
        return f"about {ACCESS_LOG_LINE_BYTES} bytes each"
    each = ", ".join(f"{api} {size} bytes" for api, size in sorted(lines.items()))
    return f"{each} a line, from each stage's format in the template"


def _memory(deployment: dict[str, Any]) -> str:
    named = ", ".join(f"`{k}` {v} MB" for k, v in sorted(deployment["memory_mb"].items()))
    return f"{named}, the others {deployment['default_memory_mb']} MB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cost_doc", description=__doc__)
    parser.add_argument("results", nargs="?", help="a bench results JSON with a cost section")
    parser.add_argument(
        "--check", action="store_true", help="fail if docs/cost.md is not rendered from the run"
    )
    args = parser.parse_args(argv)
    run = json.loads(RUN.read_text())
    if args.check:
        if DOC.read_text() != render(run):
            print(
                "docs/cost.md is not what docs/cost-run.json renders: run python -m bench.cost_doc",
                file=sys.stderr,
            )
            return 1
        return 0
    if args.results:
        results = json.loads(Path(args.results).read_text())
        run["cost"], run["mode"], run["measured"] = (
            results["cost"],
            results["mode"],
            results["machine"]["date"],
        )
        RUN.write_text(json.dumps(run, indent=2) + "\n")
    DOC.write_text(render(run))
    print(f"wrote {DOC.relative_to(ROOT)} from {RUN.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
