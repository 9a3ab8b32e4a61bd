"""A function of this service: one construct instead of a copy-pasted Lambda block per entry point.

Each function gets its own role holding only the statements the stack adds with :meth:`allow`, its
own log group, X-Ray tracing that follows the caller's sampling decision (the REST API's sampling rule,
``infra.tracing``), JSON logs without Lambda's START/END/REPORT lines (system log level WARN), and an
environment checked against the settings model it reads. With SnapStart on (``infra.snapstart``) a
function may restore from a snapshot of a published version; callers invoke :attr:`entry`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct
from pydantic_settings import BaseSettings

from infra.bundling import RUNTIMES
from infra.config import ServiceConfig
from infra.environment import service_environment
from infra.snapstart import live_alias, python_version, snap_start_conf, version_options

# Python's level names where Lambda's differ.
_LAMBDA_LEVELS = {"WARNING": "WARN", "CRITICAL": "FATAL"}


class ServiceFunction(Construct):
    """A Lambda entry point of the service with least-privilege, observable defaults."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: ServiceConfig,
        code: lambda_.Code,
        handler: str,
        description: str,
        settings_model: type[BaseSettings],
        settings: Mapping[str, str],
        memory_mib: int | None = None,
        timeout: Duration | None = None,
        reserved_concurrency: int | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.settings_model = settings_model
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=config.log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{description} (Lambda)",
        )
        # Written by hand rather than AWSLambdaBasicExecutionRole so the role can touch its own logs only.
        self.allow(["logs:CreateLogStream", "logs:PutLogEvents"], [self.log_group.log_group_arn])
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIMES[python_version(config)],
            architecture=(
                lambda_.Architecture.ARM_64
                if config.lambda_architecture == "arm64"
                else lambda_.Architecture.X86_64
            ),
            code=code,
            handler=handler,
            description=description,
            role=self.role,
            log_group=self.log_group,
            memory_size=memory_mib or config.function_memory_mib,
            timeout=timeout or Duration.seconds(30),
            reserved_concurrent_executions=reserved_concurrency,
            # Traced when the caller sampled the request: active tracing would start a trace on every
            # invocation at a million jobs a month (1 a second, then 5 %), at $5 per million traces.
            tracing=lambda_.Tracing.PASS_THROUGH,
            logging_format=lambda_.LoggingFormat.JSON,
            system_log_level_v2=lambda_.SystemLogLevel[config.lambda_system_log_level],
            application_log_level_v2=lambda_.ApplicationLogLevel[
                _LAMBDA_LEVELS.get(config.log_level, config.log_level)
            ],
            environment=service_environment(settings_model, settings, log_level=config.log_level),
            snap_start=snap_start_conf(config, handler),
            current_version_options=version_options(config, handler),
        )
        # What API Gateway and event sources should invoke: the alias of the snapshotted version, or
        # the function itself.
        self.entry: lambda_.IFunction = (
            live_alias(self, self.function) if snap_start_conf(config, handler) else self.function
        )

    def allow(
        self,
        actions: Sequence[str],
        resources: Sequence[str],
        conditions: Mapping[str, object] | None = None,
    ) -> None:
        """Grant exactly these actions on exactly these resources to this function alone."""
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=list(actions), resources=list(resources), conditions=dict(conditions or {}) or None
            )
        )
