"""The whole service on one machine: moto for AWS, the API Gateway emulator, the simulator, the runners.

What is emulated, and by what: DynamoDB, SQS and S3 by moto in server mode on 127.0.0.1, behind IAM
(``local.iam``); API Gateway (REST with API keys, WebSocket with its authorizer and @connections) by
``local.apigw``, which calls the real Lambda handlers in this process with the events API Gateway sends;
API keys and usage plans by moto's API Gateway and the tenants table (``local.api_keys``,
``python -m admin tenants --local``); ComfyUI by ``local.comfyui_sim`` unless ``COMFYUI_URL`` names a
real one. The runners are real, separate
processes, started with the environment written to ``<state_dir>/runner.env``.

Every process calls AWS as its own role: its credentials hold exactly the policies the synthesized
template gives that role, so a call ``infra/`` does not grant fails here as it would in AWS.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from local import fair_queues, processes
from local.api_keys import LocalKeyStore
from local.apigw.events import ApiInfo
from local.apigw.mock import MockIntegration
from local.apigw.rest import RestApiEmulator
from local.apigw.server import ApiGatewayEmulator
from local.apigw.static import static_site
from local.apigw.websocket import WebSocketApiEmulator
from local.aws_resources import LocalResources, create_resources
from local.dlq_source import SqsEventSource
from local.ecs_agent import EcsAgentServer
from local.iam.account import HARNESS_KEY, GuardedMotoServer, LocalIam
from local.iam.template import LocalAccount, runner_process, synthesized_template
from local.imds import InstanceMetadata
from local.pools import (
    PoolFleet,
    PoolRunner,
    parse_local_pools,
    pool_runner_env,
    routes_env,
    runners_at_rest,
    start_simulator,
    synth_context,
)
from local.settings import LocalStackSettings
from local.stream_source import StreamEventSource, filters_of
from shared.aws.clients import AwsClients, sessions_from
from shared.aws.tenants import Tenant, TenantKey, TenantStore
from shared.console import CONSOLE_PATH, content_security_policy
from shared.model_paths import EXTRA_MODEL_PATHS_FILE, extra_model_paths_yaml
from shared.names import (
    DEFAULT_STACK_NAME,
    PUBLIC_REST_PATHS,
    WS_CONNECT_MOCK_TEMPLATES,
    WS_CONNECT_TEMPLATE_SELECTION,
    WS_ROUTE_SELECTION_EXPRESSION,
    WS_TOKEN_QUERY_PARAMETER,
    Env,
    S3Prefix,
    usage_plan_name,
)
from shared.pools import PRIORITY_LANE, PoolSpec, parse_tier_policies

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
WEBSOCKET_API_ID = "local0wsap"
# The stack process's own environment holds no valid key: a handler that called AWS outside its
# function's credentials would get InvalidAccessKeyId instead of someone else's permissions.
NO_ROLE_KEY = "NO-ROLE-OUTSIDE-A-FUNCTION"

Handler = Callable[[dict[str, Any], Any], Any]


def local_bucket_name(template_name: str) -> str:
    """A bucket name in AWS ends in its account and region (names are global); locally it does not."""
    return template_name.removesuffix(f"-{ACCOUNT_ID}-{REGION}")


def api_key_id(key: str) -> str:
    """A stable id per fixed key (``API_KEYS``), shaped like API Gateway's key ids; also its tenant's id."""
    return hashlib.sha256(key.encode()).hexdigest()[:10]


@dataclass
class LocalStack:
    settings: LocalStackSettings = field(default_factory=LocalStackSettings)
    rest_url: str = ""
    websocket_url: str = ""
    management_url: str = ""
    aws_endpoint: str = ""
    comfyui_url: str = ""
    api_keys: list[str] = field(default_factory=list)
    resources: LocalResources | None = None
    runners: list[subprocess.Popen[bytes]] = field(default_factory=list)
    iam: LocalIam | None = None
    _moto: GuardedMotoServer | None = None
    _simulator: subprocess.Popen[bytes] | None = None
    _gateway: ApiGatewayEmulator | None = None
    _dlq_sources: list[SqsEventSource] = field(default_factory=list)
    _event_sources: list[StreamEventSource | SqsEventSource] = field(default_factory=list)
    ecs_agent: EcsAgentServer | None = None
    # The declared pools (POOLS) and their runners, each on a simulated instance of its own.
    pools: tuple[PoolSpec, ...] = ()
    fleet: PoolFleet = field(default_factory=PoolFleet)

    @property
    def state_dir(self) -> Path:
        return processes.ROOT / self.settings.state_dir

    def start(self) -> LocalStack:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.api_keys = self.settings.key_list() or ["local-" + secrets.token_urlsafe(16)]
        self._start_aws()
        self._start_comfyui()
        self._install_lambda_environment()
        self._start_gateway()
        self._start_dlq_consumer()
        self._start_webhooks()
        # The ECS agent's task-protection endpoint, which ECS gives every task in AWS.
        self.ecs_agent = EcsAgentServer().start()
        self.runner_env_path.write_text("".join(f"{k}={v}\n" for k, v in sorted(self.runner_env().items())))
        for _ in range(self.settings.runners):
            self.start_runner()
        for pool in self.pools:
            for _ in range(runners_at_rest(pool)):
                self.start_pool_runner(pool)
        self._write_endpoints()
        return self

    def _start_aws(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
        port = processes.free_port()
        account = LocalAccount(ACCOUNT_ID, REGION, WEBSOCKET_API_ID, local_bucket_name)
        self.pools = parse_local_pools(self.settings.pools)
        policies = parse_tier_policies(self.settings.tier_policies)
        context = synth_context(self.pools, self.settings.tier_list(), policies)
        self.iam = LocalIam.from_template(synthesized_template(context=context), account)
        # A tenant's messages carry its id as their group: SQS fair queues, which moto lacks.
        fair_queues.install()
        self._moto = GuardedMotoServer(self.iam, "127.0.0.1", port)
        self._moto.start()
        self.aws_endpoint = f"http://127.0.0.1:{port}"
        self.resources = create_resources(
            local_clients(self.aws_endpoint),
            visibility_timeout_seconds=self.settings.visibility_timeout_seconds,
            max_receive_count=self.settings.max_receive_count,
            pools=[pool.name for pool in self.pools],
            priority_lanes="tiers" in context,
        )
        self._create_tenancy()

    def _create_tenancy(self) -> None:
        """The tiers' usage plans, as the CDK stack names them, and a tenant for each fixed key."""
        assert self.resources is not None
        clients = local_clients(self.aws_endpoint)
        tiers = self.settings.tier_list()
        for tier in tiers:
            clients.apigateway.create_usage_plan(name=usage_plan_name(DEFAULT_STACK_NAME, tier))
        store = TenantStore(clients.dynamodb, self.resources.tenants_table)
        now = int(time.time())
        for index, key in enumerate(self.api_keys, 1):
            tenant_id = api_key_id(key)
            store.create_tenant(Tenant(tenant_id, f"API_KEYS key {index}", tiers[0] if tiers else "", now))
            store.add_key(TenantKey(api_key_id(key), tenant_id, now))

    @property
    def model_cache_dir(self) -> Path:
        return self.state_dir / "model-cache"

    def _new_model_cache(self, cache: Path | None = None) -> Path:
        """A model cache, empty as on a new GPU instance; its ComfyUI reads it as an extra model path."""
        cache = cache or self.model_cache_dir
        shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir(parents=True)
        paths = cache / EXTRA_MODEL_PATHS_FILE
        paths.write_text(extra_model_paths_yaml(str(cache)))
        return paths

    def _start_comfyui(self) -> None:
        model_paths = self._new_model_cache()
        if self.settings.comfyui_url:
            self.comfyui_url = self.settings.comfyui_url.rstrip("/")
            processes.wait_http(self.comfyui_url + "/system_stats", 30)
            return
        port = processes.free_port()
        self._simulator = processes.start_simulator(
            port,
            self.settings.sim_step_delay,
            self.simulator_data_dir,
            self.state_dir / "comfyui-sim.log",
            # Samplers send previews, as a deployment's ComfyUI does with --preview-method auto.
            extra_args=(
                "--node-delay",
                str(self.settings.sim_node_delay),
                "--preview-method",
                "auto",
                "--extra-model-paths-config",
                str(model_paths),
            ),
        )
        self.comfyui_url = f"http://127.0.0.1:{port}"

    def _aws_env(self) -> dict[str, str]:
        assert self.resources is not None
        return {
            Env.AWS_ENDPOINT_URL: self.aws_endpoint,
            Env.AWS_REGION: REGION,
            Env.JOBS_TABLE: self.resources.jobs_table,
            Env.CONNECTIONS_TABLE: self.resources.connections_table,
            Env.TENANTS_TABLE: self.resources.tenants_table,
            Env.JOB_EVENTS_TABLE: self.resources.job_events_table,
            Env.JOBS_QUEUE_URL: self.resources.queue_url,
            Env.BUCKET: self.resources.bucket,
            Env.WEBHOOKS_TABLE: self.resources.webhooks_table,
            Env.WEBHOOK_QUEUE_URL: self.resources.webhook_queue_url,
            Env.WEBHOOK_DLQ_URL: self.resources.webhook_dlq_url,
            Env.EVENT_BUS: self.resources.event_bus,
        }

    def _install_lambda_environment(self) -> None:
        # The Lambda handlers run in this process, so this process's environment is theirs, as
        # Lambda's configuration would make it. There is no CloudWatch here to send metrics to.
        os.environ.update(self._aws_env())
        os.environ.update({"AWS_ACCESS_KEY_ID": NO_ROLE_KEY, "AWS_SECRET_ACCESS_KEY": NO_ROLE_KEY})
        os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
        os.environ["POWERTOOLS_TRACE_DISABLED"] = "true"
        os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
        os.environ["WS_TOKEN_SECRET"] = self.settings.ws_token_secret or secrets.token_urlsafe(32)
        os.environ["WEBHOOK_ALLOW_LOCAL_HTTP"] = str(self.settings.webhook_allow_local_http).lower()
        os.environ.update(self._routing_env())
        if self.settings.tier_policies:
            os.environ["TIER_POLICIES"] = self.settings.tier_policies

    def _routing_env(self) -> dict[str, str]:
        """Where the API sends each pool's jobs; nothing without pools or priority lanes."""
        assert self.resources is not None
        queues = self.resources.pool_queues
        if not self.pools and not any(PRIORITY_LANE in lanes for lanes in queues.values()):
            return {}
        return {"POOL_ROUTES": routes_env(self.pools, queues)}

    def _start_gateway(self) -> None:
        from functions.api.handler import handler as api_handler
        from functions.ws.authorizer import handler as ws_authorizer
        from functions.ws.handler import ROUTES
        from functions.ws.handler import handler as ws_handler

        assert self.iam is not None
        keys = {key: api_key_id(key) for key in self.api_keys}
        key_store = LocalKeyStore(keys, local_clients(self.aws_endpoint).apigateway)
        rest = RestApiEmulator(self.as_role("api", api_handler), key_store, public_paths=PUBLIC_REST_PATHS)
        # As deployed (infra/websocket_api.py): $connect is the authorizer and a mock, no $disconnect.
        accept = MockIntegration(WS_CONNECT_MOCK_TEMPLATES, WS_CONNECT_TEMPLATE_SELECTION)
        websocket = WebSocketApiEmulator(
            {**dict.fromkeys(ROUTES, self.as_role("ws_routes", ws_handler)), "$connect": accept},
            authorizer=self.as_role("ws_authorizer", ws_authorizer),
            route_selection_expression=WS_ROUTE_SELECTION_EXPRESSION,
            identity_sources=[f"route.request.querystring.{WS_TOKEN_QUERY_PARAMETER}"],
            api=ApiInfo(api_id=WEBSOCKET_API_ID, stage=self.iam.websocket_stage),
            management_access=self.iam.management_access,
        )
        console = static_site(CONSOLE_PATH, processes.ROOT / "console", self._console_policy)
        self._gateway = ApiGatewayEmulator(
            rest=rest,
            websocket=websocket,
            rest_port=self.settings.port,
            websocket_port=self.settings.ws_port,
            rest_middlewares=[console],
        )
        urls = self._gateway.start()
        self.rest_url = urls.rest_url or ""
        self.websocket_url = urls.websocket_url or ""
        self.management_url = urls.management_url or ""
        # Read on the first request, after the ports are known, as CDK's outputs would fill them.
        os.environ["WEBSOCKET_URL"] = self.websocket_url
        os.environ["WEBSOCKET_MANAGEMENT_URL"] = self.management_url

    def _console_policy(self) -> str:
        # Locally the WebSocket API and moto's S3 (path-style presigned URLs) are each on a port of their own.
        websocket_origin = self.websocket_url.rsplit("/", 1)[0]
        return content_security_policy([websocket_origin], [self.aws_endpoint])

    def as_role(self, process: str, handler: Handler) -> Handler:
        """The handler, calling AWS with its own function's credentials, as Lambda gives it its role's."""
        assert self.iam is not None
        new_session = functools.partial(self.iam.session, process)

        def as_role(event: dict[str, Any], context: Any) -> Any:
            with sessions_from(new_session):
                return handler(event, context)

        return as_role

    def _write_endpoints(self) -> None:
        """For scripts and tests that start ``make up`` and need to find what it serves."""
        endpoints = {
            "rest_url": self.rest_url,
            "websocket_url": self.websocket_url,
            "management_url": self.management_url,
            "aws_endpoint": self.aws_endpoint,
            "comfyui_url": self.comfyui_url,
            "api_keys": self.api_keys,
            "region": REGION,
            "stack_name": DEFAULT_STACK_NAME,
            "tenants_table": self.resources.tenants_table if self.resources else "",
            "queue_url": self.resources.queue_url if self.resources else "",
            "dlq_url": self.resources.dlq_url if self.resources else "",
            "ecs_agent_url": self.ecs_agent.url if self.ecs_agent else "",
            # Each declared pool's queues, and its runners' simulators and metadata services.
            "pools": {
                pool.name: {
                    "queues": self.resources.pool_queues.get(pool.name, {}) if self.resources else {},
                    "runners": [
                        {"comfyui_url": r.comfyui_url, "imds_url": r.imds.url if r.imds else ""}
                        for r in self.fleet.runners.get(pool.name, [])
                    ],
                }
                for pool in self.pools
            },
            "models_location": f"s3://{self.resources.bucket if self.resources else ''}/{S3Prefix.MODELS}/",
        }
        # Written whole, then renamed: a reader polling for the file never sees half of it.
        partial = self.state_dir / "stack.json.partial"
        partial.write_text(json.dumps(endpoints, indent=2))
        partial.replace(self.state_dir / "stack.json")

    def _start_dlq_consumer(self) -> None:
        from functions.dlq.handler import handler as dlq_handler

        assert self.resources is not None and self.iam is not None
        # The event source mappings (one per pool's DLQ) poll with the function's role, as Lambda's do.
        for lanes in self.resources.pool_queues.values():
            source = SqsEventSource(
                AwsClients(self.iam.session("dlq"), endpoint_url=self.aws_endpoint),
                lanes["dlq"],
                self.as_role("dlq", dlq_handler),
                REGION,
            )
            source.start()
            self._dlq_sources.append(source)

    def _start_webhooks(self) -> None:
        """The jobs table's stream feeds the dispatcher, and the attempts queue the delivery function, each
        polled with its function's role and filtered as the template's event source mappings say."""
        from functions.webhooks.handlers import deliver_handler, dispatch_handler
        from local.iam.template import LAMBDA_HANDLERS

        assert self.resources is not None and self.iam is not None
        patterns, batch_size = filters_of(synthesized_template(), LAMBDA_HANDLERS["webhook_dispatch"])
        dispatcher = StreamEventSource(
            local_clients(self.aws_endpoint).dynamodb,
            AwsClients(self.iam.session("webhook_dispatch"), endpoint_url=self.aws_endpoint).dynamodbstreams,
            self.resources.jobs_table,
            self.as_role("webhook_dispatch", dispatch_handler),
            patterns=patterns,
            batch_size=batch_size,
            region=REGION,
            name="webhook_dispatch",
        )
        deliverer = SqsEventSource(
            AwsClients(self.iam.session("webhook_delivery"), endpoint_url=self.aws_endpoint),
            self.resources.webhook_queue_url,
            self.as_role("webhook_delivery", deliver_handler),
            REGION,
            name="webhook_delivery",
            batch_size=5,
        )
        for source in (dispatcher, deliverer):
            source.start()
            self._event_sources.append(source)

    @property
    def runner_env_path(self) -> Path:
        return self.state_dir / "runner.env"

    def runner_env(self) -> dict[str, str]:
        assert self.iam is not None
        return {
            **self._aws_env(),
            # The task role's credentials, as ECS hands them to the task.
            **self.iam.env("runner"),
            "COMFYUI_URL": self.comfyui_url,
            **self._comfyui_folders(),
            "MODEL_CACHE_DIR": str(self.model_cache_dir),
            "VISIBILITY_TIMEOUT_SECONDS": str(self.settings.visibility_timeout_seconds),
            # Short polls let a local runner stop within seconds; in AWS 20 s polls cost least.
            "RECEIVE_WAIT_SECONDS": "2",
            "WEBSOCKET_MANAGEMENT_URL": self.management_url,
            # Runners started by hand from runner.env share one task; the stack's own get one each.
            "ECS_AGENT_URI": self.ecs_agent.task_uri("local") if self.ecs_agent else "",
            "PYTHONUNBUFFERED": "1",
            **self._default_priority_lane(),
        }

    def _default_priority_lane(self) -> dict[str, str]:
        assert self.resources is not None
        lane = self.resources.pool_queues.get("default", {}).get(PRIORITY_LANE)
        return {"PRIORITY_QUEUE_URL": lane} if lane else {}

    def start_pool_runner(self, pool: PoolSpec) -> PoolRunner:
        """One more runner of ``pool``, on a simulated instance of its own: a simulator, and on Spot the
        instance metadata service it hears the interruption notice from."""
        assert self.iam is not None and self.resources is not None
        runners = self.fleet.runners.setdefault(pool.name, [])
        index = len(runners)
        name = f"{pool.name}-{index}"
        # An instance of its own: its own model cache.
        model_cache = self.state_dir / f"model-cache-{name}"
        simulator, comfyui_url, data = start_simulator(
            self.state_dir,
            name,
            self.settings.sim_step_delay,
            self.settings.sim_node_delay,
            self._new_model_cache(model_cache),
        )
        imds = InstanceMetadata().start() if pool.spot else None
        # Not the default pool's lanes: this pool's own (pool_runner_env), priority included if it has one.
        shared_env = {k: v for k, v in self.runner_env().items() if k != "PRIORITY_QUEUE_URL"}
        env = {
            **{k: v for k, v in os.environ.items() if k != "PRIORITY_QUEUE_URL"},
            **shared_env,
            # The pool's own task role.
            **self.iam.env(runner_process(pool.name)),
            "COMFYUI_URL": comfyui_url,
            Env.COMFYUI_INPUT_DIR: str(data / "input"),
            Env.COMFYUI_OUTPUT_DIR: str(data / "output"),
            Env.COMFYUI_TEMP_DIR: str(data / "temp"),
            "MODEL_CACHE_DIR": str(model_cache),
            "ECS_AGENT_URI": self.ecs_agent.task_uri(f"runner-{name}") if self.ecs_agent else "",
            **pool_runner_env(pool, self.resources.pool_queues[pool.name]),
            **({"SPOT_METADATA_URL": imds.url} if imds else {}),
        }
        process = processes.start_runner(env, self.state_dir / f"runner-{name}.log")
        runner = PoolRunner(pool.name, index, process, comfyui_url, simulator, imds)
        runners.append(runner)
        return runner

    def _comfyui_folders(self) -> dict[str, str]:
        """ComfyUI's folders, which the runners share with it as in a deployed task."""
        if self.settings.comfyui_url:
            named = {
                Env.COMFYUI_INPUT_DIR: self.settings.comfyui_input_dir,
                Env.COMFYUI_OUTPUT_DIR: self.settings.comfyui_output_dir,
                Env.COMFYUI_TEMP_DIR: self.settings.comfyui_temp_dir,
            }
            return {name: value for name, value in named.items() if value}
        data = self.simulator_data_dir
        return {
            Env.COMFYUI_INPUT_DIR: str(data / "input"),
            Env.COMFYUI_OUTPUT_DIR: str(data / "output"),
            Env.COMFYUI_TEMP_DIR: str(data / "temp"),
        }

    @property
    def simulator_data_dir(self) -> Path:
        return self.state_dir / "comfyui"

    def start_runner(self, extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        index = len(self.runners)
        own_task = {"ECS_AGENT_URI": self.ecs_agent.task_uri(f"runner-{index}")} if self.ecs_agent else {}
        env = {**os.environ, **self.runner_env(), **own_task, **(extra_env or {})}
        process = processes.start_runner(env, self.state_dir / f"runner-{index}.log")
        self.runners.append(process)
        return process

    def stop(self) -> None:
        for runner in self.runners:
            processes.stop(runner)
        self.fleet.stop()
        for source in self._dlq_sources:
            source.stop()
        for event_source in self._event_sources:
            event_source.stop()
        if self._gateway is not None:
            self._gateway.stop()
        if self.ecs_agent is not None:
            self.ecs_agent.stop()
        if self._simulator is not None:
            processes.stop(self._simulator)
        if self._moto is not None:
            self._moto.stop()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def local_clients(endpoint: str) -> AwsClients:
    """Clients for the stack's own use (creating the resources), as the account's administrator."""
    session = boto3.session.Session(
        aws_access_key_id=HARNESS_KEY, aws_secret_access_key=HARNESS_KEY, region_name=REGION
    )
    return AwsClients(session, endpoint_url=endpoint)
