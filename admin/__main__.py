"""``python -m admin tenants ...``: create tenants, issue and revoke their API keys, move them between tiers.

Against AWS it uses your usual credentials (``--profile``, ``--region``, or the environment) and finds the
stack's tenants table (``<namePrefix>comfy-tenants``) and usage plans (``<stackName>-<tier>``). With
``--local`` it works on the local stack started by ``make up``, whose endpoints are in ``.local/stack.json``.
Every command prints JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from admin.tenants import AdminError, TenantAdmin, as_json
from shared.aws.clients import AwsClients
from shared.aws.tenants import TenantStore
from shared.names import DEFAULT_STACK_NAME, TENANTS_TABLE


def connect(args: argparse.Namespace) -> TenantAdmin:
    if args.local is not None:
        endpoints_file = Path(args.local) / "stack.json"
        if not endpoints_file.exists():
            raise AdminError(f"{endpoints_file} does not exist: start the local stack with `make up` first")
        stack = json.loads(endpoints_file.read_text())
        session = boto3.session.Session(
            aws_access_key_id="local", aws_secret_access_key="local", region_name=stack["region"]
        )
        clients = AwsClients(session, endpoint_url=stack["aws_endpoint"])
        table, stack_name = stack["tenants_table"], stack["stack_name"]
    else:
        session = boto3.session.Session(profile_name=args.profile, region_name=args.region)
        clients = AwsClients(session, endpoint_url=args.endpoint_url)
        table, stack_name = args.name_prefix + TENANTS_TABLE.default_name, args.stack_name
    return TenantAdmin(clients.apigateway, TenantStore(clients.dynamodb, table), stack_name)


def run(admin: TenantAdmin, args: argparse.Namespace) -> Any:
    command = args.command
    if command == "create":
        tenant = admin.create_tenant(args.name, args.tier, args.tenant_id)
        answer: dict[str, Any] = {"tenant": as_json(tenant)}
        if not args.no_key:
            answer["key"] = as_json(admin.issue_key(tenant.tenant_id))
        return answer
    if command == "issue-key":
        return as_json(admin.issue_key(args.tenant_id))
    if command == "revoke-key":
        return as_json(admin.revoke_key(args.api_key_id))
    if command == "set-tier":
        return as_json(admin.set_tier(args.tenant_id, args.tier))
    if command == "show":
        tenant, keys = admin.show(args.tenant_id)
        return {"tenant": as_json(tenant), "keys": [as_json(key) for key in keys]}
    if command == "list":
        return [as_json(tenant) for tenant in admin.tenants()]
    return admin.tiers()


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m admin", description=__doc__.splitlines()[0])
    groups = root.add_subparsers(dest="group", required=True)
    tenants = groups.add_parser("tenants", help="tenants and their API keys", description=__doc__)
    where = tenants.add_argument_group("where")
    where.add_argument(
        "--local",
        nargs="?",
        const=".local",
        metavar="STATE_DIR",
        help="the local stack started by `make up` (its state directory, default .local)",
    )
    where.add_argument("--profile", help="AWS profile (default: the environment's credentials)")
    where.add_argument("--region", help="AWS region (default: the profile's or the environment's)")
    where.add_argument("--endpoint-url", help="an AWS endpoint to use instead of AWS's own")
    where.add_argument("--stack-name", default=DEFAULT_STACK_NAME, help="the stack's name (-c stackName)")
    where.add_argument("--name-prefix", default="", help="the stack's table name prefix (-c namePrefix)")
    commands = tenants.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="a new tenant in a tier, and its first API key")
    create.add_argument("name", help="who the tenant is, for people")
    create.add_argument("--tier", required=True, help="a usage-plan tier of the stack (see `tiers`)")
    create.add_argument("--tenant-id", help="default: t-<16 hex digits>; lowercase letters, digits, '-'")
    create.add_argument("--no-key", action="store_true", help="issue no key yet")
    issue = commands.add_parser("issue-key", help="a new API key for a tenant (prints its value once)")
    issue.add_argument("tenant_id")
    revoke = commands.add_parser("revoke-key", help="revoke an API key; its tenant's jobs stay the tenant's")
    revoke.add_argument("api_key_id")
    tier = commands.add_parser("set-tier", help="move a tenant and all its keys to another tier")
    tier.add_argument("tenant_id")
    tier.add_argument("tier")
    show = commands.add_parser("show", help="a tenant and its keys (ids only)")
    show.add_argument("tenant_id")
    commands.add_parser("list", help="every tenant")
    commands.add_parser("tiers", help="the stack's tiers and their usage plan ids")
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        answer = run(connect(args), args)
    except AdminError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as error:
        print(f"error: AWS refused: {error}", file=sys.stderr)
        return 1
    print(json.dumps(answer, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
