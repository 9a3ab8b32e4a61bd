"""``comfy-jobs webhooks ...``: manage webhook endpoints, see a job's deliveries, verify a received one."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from comfy_jobs.client import Client
from comfy_jobs.webhooks import Delivery, Webhook, verify_webhook

EVENTS = ["job.running", "job.succeeded", "job.failed", "job.canceled", "job.expired"]


def add_webhooks_parser(commands: Any, common: Callable[[], argparse.ArgumentParser]) -> None:
    webhooks = commands.add_parser("webhooks", parents=[common()], help="webhook endpoints and deliveries")
    actions = webhooks.add_subparsers(dest="webhooks_action", required=True, metavar="ACTION")
    create = actions.add_parser("create", parents=[common()], help="register a URL for your jobs' events")
    create.add_argument("webhook_url", metavar="URL", help="https URL to POST events to")
    create.add_argument(
        "--event", action="append", choices=EVENTS, default=[], help="repeat; default: outcomes"
    )
    create.add_argument("--description")
    actions.add_parser("list", parents=[common()], help="your webhook endpoints")
    for name, text in [
        ("show", "one endpoint"),
        ("delete", "remove an endpoint"),
        ("rotate", "a new secret (the old one signs too for a day)"),
        ("enable", "send again to an endpoint disabled by a 410"),
    ]:
        actions.add_parser(name, parents=[common()], help=text).add_argument("webhook_id")
    secret = actions.add_parser("job-secret", parents=[common()], help="the secret of jobs' own webhooks")
    secret.add_argument("--rotate", action="store_true", help="make a new one")
    deliveries = actions.add_parser("deliveries", parents=[common()], help="a job's deliveries and attempts")
    deliveries.add_argument("job_id")
    redeliver = actions.add_parser("redeliver", parents=[common()], help="send a finished delivery again")
    redeliver.add_argument("job_id")
    redeliver.add_argument("delivery_id", help="<event>@<target>, as deliveries lists it")
    verify = actions.add_parser(
        "verify", parents=[common()], help="check a received webhook's signature (no API call)"
    )
    verify.add_argument("--secret", required=True)
    verify.add_argument("--body", type=Path, required=True, help="the raw body as received")
    verify.add_argument("--header", action="append", default=[], metavar="NAME:VALUE", help="repeat")


def _show(value: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(value, default=str, indent=None))
        return
    rows = value if isinstance(value, list) else [value]
    for row in rows:
        if isinstance(row, Webhook):
            state = "enabled" if row.enabled else f"disabled ({row.disabled_reason})"
            events = ",".join(row.events) or "outcomes"
            print(f"{row.webhook_id}  {state}  failures={row.failure_count}  {events}  {row.url}")
            if row.secret:
                print(f"secret: {row.secret}")
        elif isinstance(row, Delivery):
            print(f"{row.delivery_id}  {row.status}  {row.url}")
            for attempt in row.attempts:
                code = attempt.get("status_code") or attempt.get("error")
                print(f"  #{attempt['attempt']}  {attempt['at']}  {code}  {attempt['latency_ms']} ms")
        else:
            print(row)


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return (
        dataclasses.asdict(value)
        if dataclasses.is_dataclass(value) and not isinstance(value, type)
        else value
    )


def run_webhooks(args: argparse.Namespace, client: Client) -> int:
    """Exit 0 when done; an API error raises (the CLI maps it to exit 5); a bad signature exits 1."""
    hooks = client.webhooks
    action = args.webhooks_action
    result: Any
    if action == "verify":
        headers = dict(h.split(":", 1) for h in args.header if ":" in h)
        try:
            result = verify_webhook(
                args.body.read_bytes(), {k.strip(): v.strip() for k, v in headers.items()}, args.secret
            )
        except Exception as exc:  # InvalidSignature, or a body that is not JSON
            print(f"comfy-jobs: not verified: {exc}", file=sys.stderr)
            return 1
    elif action == "create":
        result = hooks.create(args.webhook_url, args.event or None, args.description)
    elif action == "list":
        result = hooks.list()
    elif action == "show":
        result = hooks.get(args.webhook_id)
    elif action == "delete":
        hooks.delete(args.webhook_id)
        result = f"deleted {args.webhook_id}"
    elif action == "rotate":
        result = hooks.rotate_secret(args.webhook_id)
    elif action == "enable":
        result = hooks.enable(args.webhook_id)
    elif action == "job-secret":
        result = {"secret": hooks.rotate_job_secret() if args.rotate else hooks.job_secret()}
    elif action == "deliveries":
        result = hooks.deliveries(args.job_id)
    else:
        result = hooks.redeliver(args.job_id, args.delivery_id)
    _show(_plain(result) if args.json else result, args.json)
    return 0
