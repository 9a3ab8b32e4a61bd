"""Lambda SnapStart: which functions restore from a snapshot, on which runtime, invoked through what.

SnapStart for Python needs python3.12 or later, and snapshots only published versions: the function
gets ``SnapStart: PublishedVersions``, a version published with each change of its code or
configuration, and an alias that follows it. Whatever invokes the function must invoke the alias;
``$LATEST`` would initialise from scratch on every cold start.

Only the REST API function takes it: its cold start is a client's wait. The stream, queue and
schedule consumers answer nobody in person, and a snapshot of each would add its caching charge
(docs/cold-start.md). All the functions share one asset, so all move to python3.12 with it.
"""

from __future__ import annotations

from aws_cdk import Annotations, RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.bundling import PYTHON_VERSION
from infra.config import ServiceConfig

SNAPSTART_PYTHON_VERSION = "3.12"
# The handlers restored from a snapshot when the option is on.
SNAPSTART_HANDLERS = frozenset({"functions.api.handler.handler"})
ALIAS_NAME = "live"


def python_version(config: ServiceConfig) -> str:
    """The runtime every function of the deployment runs (they share one asset and its wheels)."""
    return SNAPSTART_PYTHON_VERSION if config.snap_start else PYTHON_VERSION


def takes_snapshot(config: ServiceConfig, handler: str) -> bool:
    return config.snap_start and handler in SNAPSTART_HANDLERS


def snap_start_conf(config: ServiceConfig, handler: str) -> lambda_.SnapStartConf | None:
    return lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS if takes_snapshot(config, handler) else None


def version_options(config: ServiceConfig, handler: str) -> lambda_.VersionOptions | None:
    """Versions replaced by a deployment are deleted: a snapshot is charged for as long as its version
    keeps it (up to 14 days without an invocation), and nothing invokes an old version."""
    return (
        lambda_.VersionOptions(removal_policy=RemovalPolicy.DESTROY)
        if takes_snapshot(config, handler)
        else None
    )


def live_alias(scope: Construct, function: lambda_.Function) -> lambda_.Alias:
    """The alias callers invoke: it points at the version published for the current code and settings
    (``current_version`` publishes a new one whenever either changes), whose snapshot Lambda took."""
    alias = lambda_.Alias(scope, "Live", alias_name=ALIAS_NAME, version=function.current_version)
    # CDK warns that SnapStart applies to published versions only; the version above is that.
    Annotations.of(function).acknowledge_warning(
        "@aws-cdk/aws-lambda:snapStartRequirePublish", "current_version publishes each change"
    )
    return alias
