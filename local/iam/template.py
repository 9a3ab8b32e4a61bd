"""Each process's IAM policies, read from the synthesized CDK template and resolved for the local account.

Synthesis takes seconds (aws-cdk-lib through jsii), and the local stack starts many times in the tests, so
the template is kept under ``.local/synth/`` keyed by a hash of what it is made from: ``infra/``, ``app.py``,
``cdk.json`` and the two ``shared`` modules ``infra`` reads names and settings from. It is never committed:
a changed grant in ``infra/`` is what the next start of the stack enforces.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local import processes
from shared.names import (
    ALL_TABLES,
    BUCKET_NAME,
    EVENT_BUS_NAME,
    JOBS_DLQ_NAME,
    JOBS_QUEUE_NAME,
    LANE_TAG,
    POOL_TAG,
    QUEUE_ROLE_TAG,
    Env,
    S3Prefix,
    pool_queue_name,
)

CACHE_DIR = processes.ROOT / ".local" / "synth"
_SOURCES = ("infra", "app.py", "cdk.json", "shared/names.py", "shared/settings.py")
# What the template needs to synthesize offline: no Docker build, and any image name will do.
SYNTH_CONTEXT = {"skipBundling": True, "comfyuiImage": "local/comfyui:latest"}

# Which resource of the template each local process runs as.
LAMBDA_HANDLERS = {
    "api": "functions.api.handler.handler",
    "ws_authorizer": "functions.ws.authorizer.handler",
    "ws_routes": "functions.ws.handler.handler",
    "dlq": "functions.dlq.handler.handler",
    "webhook_dispatch": "functions.webhooks.handlers.dispatch_handler",
    "webhook_delivery": "functions.webhooks.handlers.deliver_handler",
}
RUNNER = "runner"
RUNNER_CONTAINER = "runner"


def sources_hash(root: Path = processes.ROOT) -> str:
    digest = hashlib.sha256()
    for source in _SOURCES:
        path = root / source
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            if "__pycache__" in file.parts:
                continue
            digest.update(str(file.relative_to(root)).encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()[:20]


def synthesized_template(
    cache_dir: Path = CACHE_DIR, context: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The stack's template, synthesized once per content of its sources and extra ``context`` (pools).

    With ``IAM_TEMPLATE_POOLS`` set, the template of those pools serves every context whose pools it holds:
    stacks of different pools share one synthesis (the tests' stacks do).
    """
    from local.pools import enforced_context, parse_local_pools
    from local.settings import LocalStackSettings

    template_pools = parse_local_pools(LocalStackSettings().iam_template_pools)
    context = enforced_context(dict(context or {}), template_pools)
    cache_dir.mkdir(parents=True, exist_ok=True)
    extra = json.dumps(dict(context or {}), sort_keys=True)
    variant = "" if not context else "-" + hashlib.sha256(extra.encode()).hexdigest()[:10]
    cached = cache_dir / f"template-{sources_hash()}{variant}.json"
    # One synthesis at a time: stacks started together wait for the first instead of each paying for it.
    with (cache_dir / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not cached.exists():
            partial = cached.with_suffix(".partial")
            env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "18,20"}
            done = subprocess.run(
                [sys.executable, "-m", "local.iam.template", str(partial), extra],
                cwd=processes.ROOT,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                raise RuntimeError(f"synthesizing infra/ for its IAM policies failed:\n{done.stderr[-4000:]}")
            partial.replace(cached)
    return dict(json.loads(cached.read_text()))


@dataclass(frozen=True)
class LocalAccount:
    """Where the template's references point locally: the account, region and the WebSocket API's id."""

    account_id: str
    region: str
    websocket_api_id: str
    # A bucket name in AWS carries the account and region (names are global); the local one does not.
    bucket_name: Callable[[str], str]


class Resolver:
    """Resolves the intrinsic functions policies use (Ref, Fn::GetAtt, Fn::Join, Fn::Sub, Fn::Select)."""

    def __init__(self, template: Mapping[str, Any], account: LocalAccount) -> None:
        self._resources: Mapping[str, Any] = template.get("Resources", {})
        self._account = account
        self._pseudo = {
            "AWS::Partition": "aws",
            "AWS::Region": account.region,
            "AWS::AccountId": account.account_id,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": "local",
        }

    def _attributes(self, logical_id: str) -> dict[str, str]:
        resource = self._resources.get(logical_id)
        if resource is None:
            raise KeyError(f"the template has no resource {logical_id!r}")
        kind, props = resource["Type"], resource.get("Properties", {})
        a, r = self._account.account_id, self._account.region
        if kind == "AWS::DynamoDB::Table":
            name = self.resolve(props["TableName"]) if "TableName" in props else _table_by_key(props)
            arn = f"arn:aws:dynamodb:{r}:{a}:table/{name}"
            # A stream's label is the time it was made; the local table has one stream, whatever its label.
            return {"Ref": name, "Arn": arn, "StreamArn": f"{arn}/stream/*"}
        if kind == "AWS::SQS::Queue":
            name = self.resolve(props["QueueName"]) if "QueueName" in props else _queue_by_role(props)
            arn = f"arn:aws:sqs:{r}:{a}:{name}"
            return {"Ref": f"https://sqs.{r}.amazonaws.com/{a}/{name}", "Arn": arn, "QueueName": name}
        if kind == "AWS::S3::Bucket" and ("BucketName" in props or _is_artifacts(props)):
            name = self._account.bucket_name(self.resolve(props.get("BucketName", BUCKET_NAME)))
            return {"Ref": name, "Arn": f"arn:aws:s3:::{name}"}
        if kind == "AWS::Events::EventBus":
            return {
                "Ref": EVENT_BUS_NAME,
                "Name": EVENT_BUS_NAME,
                "Arn": f"arn:aws:events:{r}:{a}:event-bus/{EVENT_BUS_NAME}",
            }
        if kind == "AWS::ApiGatewayV2::Api" and props.get("ProtocolType") == "WEBSOCKET":
            return {"Ref": self._account.websocket_api_id}
        # Anything else has no local counterpart: a name that no local call can match.
        return {"Ref": f"unresolved-{logical_id}", "Arn": f"arn:unresolved:{logical_id}"}

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {k: self.resolve(v) for k, v in value.items()}
        ((function, argument),) = value.items()
        if function == "Ref":
            return self._pseudo.get(argument) or self._attributes(argument)["Ref"]
        if function == "Fn::GetAtt":
            logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            attributes = self._attributes(logical_id)
            return attributes.get(attribute, f"arn:unresolved:{logical_id}:{attribute}")
        if function == "Fn::Join":
            separator, parts = argument
            return separator.join(str(self.resolve(p)) for p in self.resolve(parts))
        if function == "Fn::Select":
            index, items = argument
            return self.resolve(items)[int(index)]
        if function == "Fn::Split":
            separator, text = argument
            return str(self.resolve(text)).split(separator)
        if function == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else argument
            return self._substitute(text, {k: self.resolve(v) for k, v in variables.items()})
        return {k: self.resolve(v) for k, v in value.items()}

    def _substitute(self, text: str, variables: Mapping[str, Any]) -> str:
        out, rest = [], text
        while "${" in rest:
            before, _, tail = rest.partition("${")
            name, _, rest = tail.partition("}")
            out.append(before)
            if name in variables:
                out.append(str(variables[name]))
            elif name in self._pseudo:
                out.append(self._pseudo[name])
            elif "." in name:
                logical_id, attribute = name.split(".", 1)
                out.append(str(self.resolve({"Fn::GetAtt": [logical_id, attribute]})))
            else:
                out.append(str(self.resolve({"Ref": name})))
        return "".join(out) + rest


# The template may leave names to CloudFormation; the local stack names its resources from
# shared.names, so each is known by what only it has.
def _table_by_key(props: Mapping[str, Any]) -> str:
    """A table by its partition key, which is each table's own."""
    key = next(k["AttributeName"] for k in props["KeySchema"] if k["KeyType"] == "HASH")
    for spec in ALL_TABLES:
        if spec.partition_key == key:
            return spec.default_name
    raise ValueError(f"no table of shared.names has the partition key {key!r}")


def _queue_by_role(props: Mapping[str, Any]) -> str:
    """A pool's queue by its pool and lane tags, a webhook queue by its role tag; else the jobs queue is
    the one with a redrive policy, the other its dead-letter queue."""
    tags = {tag["Key"]: tag["Value"] for tag in props.get("Tags", [])}
    if POOL_TAG in tags:
        return pool_queue_name(tags[POOL_TAG], tags[LANE_TAG])
    if QUEUE_ROLE_TAG in tags:
        return str(tags[QUEUE_ROLE_TAG])
    return JOBS_QUEUE_NAME if "RedrivePolicy" in props else JOBS_DLQ_NAME


def _is_artifacts(props: Mapping[str, Any]) -> bool:
    """The artifacts bucket is the one whose lifecycle expires outputs."""
    rules = props.get("LifecycleConfiguration", {}).get("Rules", [])
    return any(str(rule.get("Prefix", "")).startswith(f"{S3Prefix.OUTPUTS}/") for rule in rules)


def _role_of(reference: Any) -> str:
    """The logical id of the role a ``Fn::GetAtt [Role, Arn]`` names."""
    if isinstance(reference, dict) and "Fn::GetAtt" in reference:
        return str(reference["Fn::GetAtt"][0])
    raise ValueError(f"expected a reference to a role of this template, got {reference!r}")


def process_roles(template: Mapping[str, Any]) -> dict[str, str]:
    """Process name (``api``, ``dlq``, ``runner``...) -> the logical id of the role it runs as."""
    by_handler = {handler: name for name, handler in LAMBDA_HANDLERS.items()}
    roles: dict[str, str] = {}
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Lambda::Function" and props.get("Handler") in by_handler:
            roles[by_handler[props["Handler"]]] = _role_of(props["Role"])
        elif resource["Type"] == "AWS::ECS::TaskDefinition":
            for container in props.get("ContainerDefinitions", []):
                if container.get("Name") == RUNNER_CONTAINER:
                    roles[runner_process(_pool_of(container))] = _role_of(props["TaskRoleArn"])
    missing = sorted({*LAMBDA_HANDLERS, RUNNER} - set(roles))
    if missing:
        raise ValueError(f"the template has no role for {', '.join(missing)}")
    return roles


def runner_process(pool: str) -> str:
    """The local principal of a pool's runners: ``runner`` for the default pool, ``runner-<pool>``."""
    return RUNNER if pool == "default" else f"{RUNNER}-{pool}"


def _pool_of(container: Mapping[str, Any]) -> str:
    for variable in container.get("Environment", []):
        if variable.get("Name") == Env.POOL_NAME:
            return str(variable["Value"])
    return "default"


def role_policies(template: Mapping[str, Any], role_id: str, resolver: Resolver) -> list[dict[str, Any]]:
    """Every identity policy document attached to one role, resolved: inline, and the stack's own managed.

    AWS-managed policies (an ARN under ``iam::aws:policy/``) are not in the template; the service's roles
    attach none, and any they did would grant nothing here.
    """
    resources = template["Resources"]
    documents: list[dict[str, Any]] = []
    role = resources[role_id].get("Properties", {})
    documents += [p["PolicyDocument"] for p in role.get("Policies", [])]
    for resource in resources.values():
        if resource["Type"] in {"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"}:
            props = resource.get("Properties", {})
            if {"Ref": role_id} in props.get("Roles", []):
                documents.append(props["PolicyDocument"])
    return [resolver.resolve(document) for document in documents]


def websocket_stage(template: Mapping[str, Any]) -> str:
    """The stage the WebSocket API is deployed to: @connections ARNs name it."""
    resources = template["Resources"]
    for resource in resources.values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::ApiGatewayV2::Stage":
            api = resources.get(props.get("ApiId", {}).get("Ref", ""), {})
            if api.get("Properties", {}).get("ProtocolType") == "WEBSOCKET":
                return str(props["StageName"])
    raise ValueError("the template has no stage for a WebSocket API")


def _synthesize(out: Path, extra: Mapping[str, Any]) -> None:
    from infra.assembly import build_app

    with tempfile.TemporaryDirectory(prefix="cdk.out-") as outdir:
        app, stack = build_app({**SYNTH_CONTEXT, **extra}, outdir=outdir, nag=False)
        template = app.synth().get_stack_artifact(stack.artifact_id).template
    out.write_text(json.dumps(template))


if __name__ == "__main__":
    _synthesize(Path(sys.argv[1]), json.loads(sys.argv[2]) if len(sys.argv) > 2 else {})
