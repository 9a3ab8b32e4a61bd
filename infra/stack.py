"""The whole service in one stack, composed of one construct per concern.

This file wires the constructs together: who gets which setting and which exact permission.
"""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.api_account import ApiGatewayAccount
from infra.bundling import lambda_code
from infra.comfyui_files import catalog_statements
from infra.config import ServiceConfig
from infra.console import Console
from infra.data import DataStore, index_arn, object_arns
from infra.environment import setting_env
from infra.function import ServiceFunction
from infra.models import ModelLibrary, cache_environment
from infra.nag import acknowledge_findings
from infra.observability import Observability
from infra.pools import PoolQueues, runner_pool_settings
from infra.rest_api import RestApi
from infra.runner import GpuRunners
from infra.snapstart import python_version
from infra.webhooks import Webhooks
from infra.websocket_api import WebSocketApi
from shared.names import (
    JOBS_BY_OWNER_INDEX,
    JOBS_IN_FLIGHT_INDEX,
    MODELS_LOCATION_OUTPUT,
    TENANTS_TABLE_OUTPUT,
    Env,
    S3Prefix,
)
from shared.pools import tier_policies_json
from shared.settings import (
    ApiSettings,
    DlqSettings,
    RoutingSettings,
    RunnerSettings,
    WebSocketSettings,
)

# API Gateway gives up on a REST integration after 29 s; Prefer: wait=N stays below that.
API_TIMEOUT = Duration.seconds(29)


class ComfyApiStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: ServiceConfig, **kwargs: object
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.config = config
        data = DataStore(self, "Data", config=config)
        self.data = data
        self.pool_queues = PoolQueues(self, "Pools", config=config, data=data)
        self.models = ModelLibrary(self, "Models", config=config, artifacts=data.bucket)
        self.ws_token_secret = secretsmanager.Secret(
            self,
            "WsTokenSecret",
            description="Signs the short-lived WebSocket tokens that POST /v1/ws-tokens hands out",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=64, exclude_punctuation=True
            ),
        )
        self.alarm_topic = (
            sns.Topic.from_topic_arn(self, "AlarmTopic", config.alarm_topic_arn)
            if config.alarm_topic_arn
            else None
        )
        code = lambda_code(config.lambda_architecture, python_version(config))
        resources = {
            Env.JOBS_TABLE: data.jobs_table.table_name,
            Env.CONNECTIONS_TABLE: data.connections_table.table_name,
            Env.JOB_EVENTS_TABLE: data.job_events_table.table_name,
            Env.JOBS_QUEUE_URL: data.queue.queue_url,
            Env.BUCKET: data.bucket.bucket_name,
        }
        # Where each pool's jobs go, for the processes that send them; without pools, the queue above.
        routing = (
            {setting_env(RoutingSettings, "pool_routes"): self.pool_queues.routes_json()}
            if config.pools or config.priority_lanes
            else {}
        )
        tier_policies = {t.name: t.policy for t in config.tiers if t.max_jobs_in_flight or t.priority}
        secret_arn = self.ws_token_secret.secret_arn

        def function(
            construct_id: str,
            handler: str,
            description: str,
            model: type,
            extra: dict[str, str] | None = None,
            **options: object,
        ) -> ServiceFunction:
            return ServiceFunction(
                self,
                construct_id,
                config=config,
                code=code,
                handler=handler,
                description=description,
                settings_model=model,
                settings={**resources, **(extra or {})},
                **options,  # type: ignore[arg-type]
            )

        # -- job events: EventBridge and webhooks, from the jobs table's stream (infra/webhooks.py) ----
        self.webhooks = Webhooks(
            self,
            "Webhooks",
            data=data,
            function=function,
            alarm_topic=self.alarm_topic,
            dlq_retention=Duration.days(config.dlq_retention_days),
        )

        # -- WebSocket API: $connect's authorizer and the route function ----------------------------
        self.ws_authorizer = function(
            "WsAuthorizer",
            "functions.ws.authorizer.handler",
            "Checks the token of a WebSocket $connect",
            WebSocketSettings,
            {setting_env(WebSocketSettings, "ws_token_secret_arn"): secret_arn},
        )
        self.ws_routes = function(
            "WsRoutes",
            "functions.ws.handler.handler",
            "WebSocket routes: subscribe, unsubscribe, ping and $default",
            WebSocketSettings,
        )
        self.websocket = WebSocketApi(
            self, "WebSocket", config=config, authorizer=self.ws_authorizer, handler=self.ws_routes
        )
        management_url = self.websocket.management_url

        # -- REST API ---------------------------------------------------------------------------------
        self.api_function = function(
            "ApiFunction",
            "functions.api.handler.handler",
            "The REST API (FastAPI)",
            ApiSettings,
            {
                setting_env(ApiSettings, "websocket_url"): self.websocket.url,
                setting_env(ApiSettings, "websocket_management_url"): management_url,
                setting_env(ApiSettings, "ws_token_secret_arn"): secret_arn,
                setting_env(ApiSettings, "prefer_wait_max_seconds"): str(config.prefer_wait_max_seconds),
                setting_env(ApiSettings, "tenants_table_name"): data.tenants_table.table_name,
                **routing,
                **(
                    {setting_env(ApiSettings, "tier_policies"): tier_policies_json(tier_policies)}
                    if tier_policies
                    else {}
                ),
                setting_env(ApiSettings, "webhooks_table_name"): data.webhooks_table.table_name,
                setting_env(ApiSettings, "webhook_queue_url"): self.webhooks.queue.queue_url,
                **self.models.environment(),
            },
            memory_mib=config.api_memory_mib,
            timeout=API_TIMEOUT,
            # A cap as much as a reservation: the API cannot take the executions the WebSocket and
            # dead-letter functions need; waits are bounded to fit in it (ServiceConfig.validate).
            reserved_concurrency=config.api_reserved_concurrency,
        )
        self.rest = RestApi(self, "Rest", config=config, handler=self.api_function)
        data.allow_browser_origins(self.rest.origins)

        # -- background functions ---------------------------------------------------------------------
        self.dlq_function = function(
            "DeadLetters",
            "functions.dlq.handler.handler",
            "Fails the jobs whose messages reached the dead-letter queue",
            DlqSettings,
            {setting_env(DlqSettings, "websocket_management_url"): management_url},
            timeout=Duration.seconds(30),
        )
        for dead_letters in self.pool_queues.dead_letter_queues():
            self.dlq_function.function.add_event_source(
                event_sources.SqsEventSource(dead_letters, batch_size=10, report_batch_item_failures=True)
            )

        # -- GPU runners ------------------------------------------------------------------------------
        runner_settings = {
            **resources,
            setting_env(RunnerSettings, "comfyui_url"): f"http://localhost:{config.comfyui_port}",
            setting_env(RunnerSettings, "visibility_timeout_seconds"): str(config.visibility_timeout_seconds),
            setting_env(RunnerSettings, "stop_timeout_seconds"): str(config.runner_stop_budget_seconds),
            setting_env(RunnerSettings, "websocket_management_url"): management_url,
            setting_env(RunnerSettings, "log_level"): config.log_level,
            **self.models.environment(),
            **cache_environment(config),
        }
        default_queues = self.pool_queues.sets[config.default_pool.name]
        self.runners = GpuRunners(
            self,
            "Runners",
            config=config,
            data=data,
            alarm_topic=self.alarm_topic,
            settings={
                **runner_settings,
                **(
                    runner_pool_settings(config.default_pool, default_queues) if config.priority_lanes else {}
                ),
            },
            queues=default_queues,
        )
        # Each declared pool: its own capacity, task and scaling, in the same VPC and cluster.
        self.pool_runners = [
            GpuRunners(
                self,
                f"Pool{pool.name.title().replace('-', '')}Runners",
                config=config,
                data=data,
                alarm_topic=self.alarm_topic,
                settings={**runner_settings, **runner_pool_settings(pool, self.pool_queues.sets[pool.name])},
                pool=pool,
                queues=self.pool_queues.sets[pool.name],
                network=(self.runners.vpc, self.runners.cluster),
            )
            for pool in config.pools
        ]
        self.all_runners = [self.runners, *self.pool_runners]

        # -- web console: CloudFront in front of its files and of /v1/*, uploads allowed from its origin --
        self.console = Console(
            self,
            "Console",
            config=config,
            rest_api=self.rest.api,
            websocket_api_id=self.websocket.api.api_id,
            log_bucket=data.log_bucket,
        )
        # Input uploads go from the browser straight to the bucket (a presigned PUT or form POST).
        data.bucket.add_cors_rule(
            allowed_methods=[s3.HttpMethods.PUT, s3.HttpMethods.POST],
            allowed_origins=[self.console.origin],
            allowed_headers=["Content-Type"],
            max_age=3000,
        )

        self._grant()

        self.api_gateway_account: ApiGatewayAccount | None = None
        if config.create_api_gateway_account_role:
            self.api_gateway_account = ApiGatewayAccount(self, "ApiGatewayAccount")
            self.api_gateway_account.required_by(self.rest.stage, self.websocket.stage)

        self.observability = Observability(
            self,
            "Observability",
            config=config,
            alarm_topic=self.alarm_topic,
            queue=data.queue,
            dead_letter_queue=data.dead_letter_queue,
            functions={
                "Api": self.api_function,
                "DeadLetters": self.dlq_function,
                "WsAuthorizer": self.ws_authorizer,
                "WsRoutes": self.ws_routes,
                "WebhookDispatcher": self.webhooks.dispatcher,
                "WebhookDeliverer": self.webhooks.deliverer,
            },
            rest_api=self.rest.api,
            runner_service=self.runners.service,
            cluster=self.runners.cluster,
            capacity_provider_name=self.runners.capacity_provider.capacity_provider_name,
            tables={
                "Jobs": data.jobs_table,
                "Connections": data.connections_table,
                "JobEvents": data.job_events_table,
            },
        )

        # Every declared pool's dead letters and oldest waiting job alarm as the default pool's do; the
        # default pool's priority lane too.
        for name, queues in self.pool_queues.sets.items():
            if name == config.default_pool.name:
                if queues.priority is not None:
                    self.observability.watch_pool("priority", None, [queues.priority])
            else:
                self.observability.watch_pool(name, queues.dead_letter, queues.all())

        CfnOutput(self, "RestApiUrl", value=self.rest.url, description="REST API base URL (…/v1/)")
        CfnOutput(self, "WebSocketUrl", value=self.websocket.url, description="WebSocket URL (wss://)")
        CfnOutput(
            self,
            "WebSocketManagementUrl",
            value=management_url,
            description="@connections endpoint the service posts job events to",
        )
        CfnOutput(self, "ConsoleUrl", value=self.console.url, description="The web console, /v1/ beside it")
        CfnOutput(self, "RestApiId", value=self.rest.api.rest_api_id)
        if self.rest.domain is not None:
            CfnOutput(
                self,
                "CustomDomainTarget",
                value=self.rest.domain.domain_name_alias_domain_name,
                description=f"Point {config.custom_domain_name} here (CNAME, or a Route 53 alias)",
            )
        for tier, plan in self.rest.usage_plans.items():
            CfnOutput(
                self,
                f"UsagePlan{tier.capitalize()}",
                value=plan.usage_plan_id,
                description=f"Usage plan id of the {tier} tier (for create-usage-plan-key)",
            )
        CfnOutput(self, "ArtifactsBucket", value=data.bucket.bucket_name)
        CfnOutput(
            self,
            MODELS_LOCATION_OUTPUT,
            value=self.models.location,
            description="The model library (python -m admin models upload writes it)",
        )
        CfnOutput(
            self,
            TENANTS_TABLE_OUTPUT,
            value=data.tenants_table.table_name,
            description="API key id -> tenant id (python -m admin tenants writes it)",
        )
        CfnOutput(self, "DashboardName", value=self.observability.dashboard.dashboard_name)

        acknowledge_findings(self)

    def _grant(self) -> None:
        """Exactly the calls each process makes; see shared/aws for the calls themselves."""
        data = self.data
        jobs = data.jobs_table.table_arn
        connections = data.connections_table.table_arn
        outputs = object_arns(data.bucket, S3Prefix.OUTPUTS)
        secret = self.ws_token_secret.secret_arn
        pool_queues = [q.queue_arn for q in self.pool_queues.job_queues()]

        api = self.api_function
        # The job's conditional put; reads of the jobs an Idempotency-Key names; UpdateItem for a cancel
        # and to keep a key's lapsed job while a later one's key lives (functions/api/idempotency.py).
        api.allow(
            ["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:UpdateItem"], [jobs]
        )
        api.allow(["dynamodb:Query"], [index_arn(data.jobs_table, JOBS_BY_OWNER_INDEX)])
        api.allow(["sqs:SendMessage"], pool_queues)
        # Each tenant's jobs in flight, counted for its tier's limit (shared/aws/in_flight.py).
        api.allow(["dynamodb:Query"], [index_arn(data.jobs_table, JOBS_IN_FLIGHT_INDEX)])
        # HeadObject on an upload is s3:GetObject; ListBucket makes a missing upload a 404, not a 403.
        api.allow(["s3:GetObject"], [outputs, object_arns(data.bucket, S3Prefix.INPUTS)])
        api.allow(["s3:ListBucket"], [data.bucket.bucket_arn])
        api.allow(
            ["s3:PutObject"],
            [object_arns(data.bucket, S3Prefix.INPUTS), object_arns(data.bucket, S3Prefix.WORKFLOWS)],
        )
        # A submission that fails to send, or loses the race for its key's job, deletes the large workflow
        # it wrote.
        api.allow(["s3:DeleteObject"], [object_arns(data.bucket, S3Prefix.WORKFLOWS)])
        # AWSCURRENT and AWSPREVIOUS: tokens and cursors signed before a rotation still verify.
        api.allow(["secretsmanager:GetSecretValue"], [secret])
        # The runners' file-input catalog, to refuse a file input that is not an upload at submit.
        for statement in catalog_statements(data.bucket, ["s3:GetObject"]):
            api.role.add_to_principal_policy(statement)
        # Lists the model library and checks a job's models at submit; the runners fetch them.
        self.models.grant_read(api.role)
        for runners in self.all_runners:
            self.models.grant_read(runners.task_definition.task_role)
        # Which tenant a key belongs to: one consistent GetItem, never a write.
        api.allow(["dynamodb:GetItem"], [data.tenants_table.table_arn])
        # A job canceled while queued is told to its subscribers; a gone one's subscription is deleted
        # (shared/notify.py). A running job's cancel puts its cancel mark, deleted if the cancel is not
        # written (functions/api/cancel_mark.py).
        api.allow(["dynamodb:Query", "dynamodb:PutItem", "dynamodb:DeleteItem"], [connections])
        # GET /v1/jobs/{id}/events reads a job's event log (shared/aws/events.py).
        api.allow(["dynamodb:Query"], [data.job_events_table.table_arn])
        self.webhooks.grant_api(api, data)

        dlq = self.dlq_function
        dlq.allow(["dynamodb:GetItem", "dynamodb:UpdateItem"], [jobs])
        dlq.allow(["dynamodb:Query", "dynamodb:DeleteItem"], [connections])
        dlq.allow(["s3:GetObject"], [outputs])

        self.ws_authorizer.allow(["secretsmanager:GetSecretValue"], [secret])

        routes = self.ws_routes
        # subscribe writes one item, unsubscribe deletes it; nothing else reads the table here.
        routes.allow(["dynamodb:PutItem", "dynamodb:DeleteItem"], [connections])
        routes.allow(["dynamodb:GetItem"], [jobs])
        # subscribe with `after` replays the job's event log; the snapshot names its latest event.
        routes.allow(["dynamodb:Query"], [data.job_events_table.table_arn])
        routes.allow(["s3:GetObject"], [outputs])

        # The processes that post job events to WebSocket clients, and no others.
        runner_roles = [runners.task_definition.task_role for runners in self.all_runners]
        for grantee in (routes.role, dlq.role, api.role, *runner_roles):
            self.websocket.grant_post(grantee)
