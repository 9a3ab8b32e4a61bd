"""CDK context -> a typed, validated configuration with documented defaults.

Every knob a platform team may turn lives here, read once from ``cdk.json`` or ``-c key=value``.
Values given on the command line arrive as strings, so numbers, lists and objects are parsed too.
``docs/deploy.md`` lists the same keys and defaults.
"""

from __future__ import annotations

import json
import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_cdk import aws_logs as logs
from constructs import Node

from shared.pools import PoolConfigError, PoolSpec, TierPolicy, parse_pool_specs
from shared.settings import ApiSettings, RunnerSettings

# ECS on EC2 honours a longer stopTimeout, but 120 s is the documented ceiling for task definitions
# that may also run on Fargate and what cfn-lint enforces; the runner's own budget stays below it.
MAX_STOP_TIMEOUT_SECONDS = 120
# The runner's shutdown budget is this much shorter than the container's, so it ends before SIGKILL.
STOP_TIMEOUT_MARGIN_SECONDS = 20
QUOTA_PERIODS = ("DAY", "WEEK", "MONTH")
# The API's own ceiling on `Prefer: wait` (its local default); a deployment may only lower it.
MAX_PREFER_WAIT_SECONDS = int(ApiSettings.model_fields["prefer_wait_max_seconds"].default)
ARCHITECTURES = ("arm64", "x86_64")
_STAGE = re.compile(r"^[A-Za-z0-9_]{1,64}$")
# A browser origin: scheme, host and optional port, nothing after it (S3 compares origins literally).
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_CERTIFICATE_ARN = re.compile(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[A-Za-z0-9-]+$")
_S3_PREFIX = re.compile(r"^([A-Za-z0-9!_.*'()-]+/)*$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# Application Auto Scaling's cron: minutes hours day-of-month month day-of-week year.
_CRON_FIELDS = 6
# gp3 limits: 125-1000 MiB/s, 3000-16000 IOPS, and at most 0.25 MiB/s per provisioned IOPS.
GP3_THROUGHPUT_MIBPS = (125, 1000)
GP3_IOPS = (3000, 16000)
WARM_POOL_STATES = ("Stopped", "Running", "Hibernated")
# AWS keeps at least 100 of an account's concurrent executions unreserved.
LAMBDA_UNRESERVED_MINIMUM = 100
# A request that does not wait still lasts up to about a second (cold start, DynamoDB, SQS).
REQUEST_OVERHEAD_SECONDS = 1


# The retention periods CloudWatch Logs accepts.
LOG_RETENTION: dict[int, logs.RetentionDays] = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    731: logs.RetentionDays.TWO_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


class ConfigError(ValueError):
    """A context value that cannot be used; the message names the key and what is expected."""


@dataclass(frozen=True)
class Throttle:
    rate_limit: float
    burst_limit: int


@dataclass(frozen=True)
class Tier:
    """A usage plan: what one API key in the tier may do."""

    name: str
    rate_limit: float
    burst_limit: int
    quota: int
    quota_period: str
    # Jobs queued and running at once for one tenant of the tier (None: no limit): 429 beyond it.
    max_jobs_in_flight: int | None = None
    # The tier's jobs go to each pool's priority lane, read before the standard one.
    priority: bool = False

    @property
    def policy(self) -> TierPolicy:
        return TierPolicy(self.max_jobs_in_flight, self.priority)


@dataclass(frozen=True)
class ScheduledMinimum:
    """From ``cron`` on (Application Auto Scaling cron, UTC unless ``time_zone``), keep this many runners."""

    cron: str
    min_runners: int
    time_zone: str | None = None


def _default_visibility_timeout() -> int:
    default = RunnerSettings.model_fields["visibility_timeout_seconds"].default
    return int(default)


DEFAULT_TIERS: dict[str, dict[str, Any]] = {
    "free": {"rateLimit": 1, "burstLimit": 2, "quota": 200, "quotaPeriod": "DAY"},
    "pro": {"rateLimit": 10, "burstLimit": 20, "quota": 100_000, "quotaPeriod": "MONTH"},
}


@dataclass(frozen=True)
class ServiceConfig:
    """The deployment's settings; each default is what ``cdk deploy`` uses when the key is absent."""

    # API Gateway stage name of both APIs (REST: https://.../<stage>/v1/..., WebSocket: wss://.../<stage>).
    stage: str = "prod"
    # The ComfyUI container image (registry/repo:tag or an ECR URI in this account); required to deploy.
    comfyui_image: str = ""
    comfyui_port: int = 8188
    comfyui_memory_reservation_mib: int = 12_288
    # Where ComfyUI reads inputs and writes outputs and temp files inside its image (its folder_paths);
    # each becomes a volume the runner shares, so it can remove a job's files once they are in S3.
    comfyui_input_dir: str = "/comfyui/input"
    comfyui_output_dir: str = "/comfyui/output"
    comfyui_temp_dir: str = "/comfyui/temp"
    # The user ComfyUI runs as in its image (root in most): the runner runs as it too, to remove the files
    # ComfyUI writes. Set it to ComfyUI's uid:gid when the image runs ComfyUI as another user.
    comfyui_user: str = "0:0"
    runner_memory_reservation_mib: int = 1024
    # GPU instance types for the runner fleet; more than one makes a mixed-instances group.
    instance_types: tuple[str, ...] = ("g5.xlarge",)
    # USD per instance hour (g5.xlarge on demand in us-east-1): each job's GPU cost is its GPU seconds at
    # this price. Set it to what the fleet really pays (a Savings Plan, Spot, another region or type).
    gpu_price_per_hour: float = 1.006
    root_volume_gib: int = 200
    # The root volume's gp3 throughput and IOPS: pulling a ~10 GB image is bound by them (gp3's base is
    # 125 MiB/s and 3000 IOPS).
    root_volume_throughput_mibps: int = 500
    root_volume_iops: int = 3000
    # Stopped (or Running, Hibernated) GPU instances kept ready beside the group: booted once, image pulled.
    warm_pool_size: int = 0
    warm_pool_state: str = "Stopped"
    # Pull the ComfyUI image while an instance boots (before it joins the cluster, or into the warm pool).
    pre_pull_image: bool = False
    # The model library: <modelsPrefix><folder>/<name> in modelsBucket (empty: the artifacts bucket).
    models_bucket: str = ""
    models_prefix: str = "models/"
    # The runners' model cache on each GPU instance (its NVMe instance store where the type has one,
    # else a gp3 volume of model_cache_volume_gib): least recently used models go past model_cache_gib.
    model_cache_gib: int = 150
    model_cache_volume_gib: int = 200
    # A template name or API-format workflow JSON each runner runs before its first job (empty: none).
    warmup_workflow: str = ""
    # Times of day with a floor of runners (office hours): the service never goes below it then.
    scheduled_min_runners: tuple[ScheduledMinimum, ...] = ()
    min_runners: int = 0
    max_runners: int = 4
    # Jobs (waiting plus in hand) per running runner that the service scales towards.
    target_jobs_per_runner: float = 2.0
    # Target tracking's cooldowns: out fast, in slowly (a GPU instance takes minutes to come back).
    scale_out_cooldown_seconds: int = 60
    scale_in_cooldown_seconds: int = 600
    # Runner pools beside the default one (shared/pools.py): each its own queues, capacity and scaling.
    pools: tuple[PoolSpec, ...] = ()
    stop_timeout_seconds: int = MAX_STOP_TIMEOUT_SECONDS
    max_azs: int = 2
    nat_gateways: int = 1
    visibility_timeout_seconds: int = field(default_factory=_default_visibility_timeout)
    max_receive_count: int = 5
    queue_retention_days: int = 4
    dlq_retention_days: int = 14
    output_retention_days: int = 30
    input_retention_days: int = 7
    workflow_retention_days: int = 30
    # Browser origins, besides the API's own, that may use presigned S3 URLs; "*" only when asked for.
    cors_allowed_origins: tuple[str, ...] = ()
    # A custom domain for the REST API (regional), with its ACM certificate in the stack's region.
    custom_domain_name: str | None = None
    certificate_arn: str | None = None
    log_retention_days: int = 30
    log_level: str = "INFO"
    # Lambda's own START/END/REPORT lines are INFO: about 360 bytes an invocation, not written at WARN.
    lambda_system_log_level: str = "WARN"
    # The share of REST requests X-Ray traces (a sampling rule without a reservoir, so the share holds at
    # any traffic); the functions follow the API's decision. 1 % of a million jobs a month is 10,000
    # traces: enough to see where time goes; raise it to chase one request.
    xray_sampling_rate: float = 0.01
    lambda_architecture: str = "arm64"
    # Lambda SnapStart for the REST API function (infra.snapstart): every function moves to python3.12,
    # and API Gateway invokes a published version through an alias. Off: see docs/cold-start.md.
    snap_start: bool = False
    # The REST API function waits on DynamoDB, SQS and S3 far more than it computes (about 10 ms of CPU a
    # request; `Prefer: wait` is all waiting), so half a GB halves its GB-seconds; its cold start, bound
    # by imports, gets half the CPU of 1 GB. Raise it where cold starts matter more than GB-seconds.
    api_memory_mib: int = 512
    # Concurrent executions reserved for (and capping) the REST API function, so that it cannot take the
    # WebSocket and dead-letter functions' share; waits are bounded to fit (see prefer_wait_max_seconds).
    api_reserved_concurrency: int = 400
    # The longest `Prefer: wait` the API applies; longer asks are shortened (Preference-Applied says so).
    prefer_wait_max_seconds: int = 5
    function_memory_mib: int = 256
    api_throttle: Throttle = Throttle(rate_limit=50, burst_limit=100)
    websocket_throttle: Throttle = Throttle(rate_limit=50, burst_limit=100)
    tiers: tuple[Tier, ...] = field(
        default_factory=lambda: tuple(_tier(name, spec) for name, spec in DEFAULT_TIERS.items())
    )
    queue_age_alarm_seconds: int = 900
    # An SNS topic (ARN) that every alarm notifies; none: alarms show in the console only.
    alarm_topic_arn: str | None = None
    # A WAFv2 web ACL (ARN, REGIONAL scope) to put in front of the REST API stage.
    web_acl_arn: str | None = None
    # Keep tables and buckets when the stack is deleted or a change would replace them.
    retain_data: bool = True
    # DynamoDB deletion protection on the tables: turn on once the first deploy has succeeded.
    table_deletion_protection: bool = False
    # Set the account's API Gateway CloudWatch Logs role (one per account and region); false if it exists.
    create_api_gateway_account_role: bool = True

    @property
    def default_pool(self) -> PoolSpec:
        """The service's own pool, from the top-level settings: one GPU per instance, on-demand."""
        return PoolSpec(
            name="default",
            instance_types=self.instance_types,
            gpus_per_instance=1,
            min_instances=self.min_runners,
            max_instances=self.max_runners,
        )

    @property
    def all_pools(self) -> tuple[PoolSpec, ...]:
        return (self.default_pool, *self.pools)

    @property
    def priority_lanes(self) -> bool:
        """Every pool has a priority lane as soon as one tier pays for it."""
        return any(t.priority for t in self.tiers)

    @property
    def log_retention(self) -> logs.RetentionDays:
        return LOG_RETENTION[self.log_retention_days]

    @property
    def api_peak_concurrency(self) -> int:
        """API executions at the stage's throttle: a burst, then the steady rate, each lasting a full wait."""
        throttle = self.api_throttle
        seconds = self.prefer_wait_max_seconds + REQUEST_OVERHEAD_SECONDS
        return int(throttle.burst_limit + throttle.rate_limit * seconds)

    @property
    def runner_stop_budget_seconds(self) -> int:
        return max(self.stop_timeout_seconds - STOP_TIMEOUT_MARGIN_SECONDS, 0)

    @classmethod
    def from_context(cls, node: Node) -> ServiceConfig:
        return cls.from_mapping({key: node.try_get_context(key) for key in CONTEXT_KEYS})

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> ServiceConfig:
        given = {key: value for key, value in values.items() if value is not None}
        unknown = set(given) - set(CONTEXT_KEYS)
        if unknown:
            raise ConfigError(f"unknown context keys: {sorted(unknown)}")
        kwargs: dict[str, Any] = {}
        for key, value in given.items():
            attr, parse = CONTEXT_KEYS[key]
            try:
                kwargs[attr] = parse(value)
            except PoolConfigError as exc:
                raise ConfigError(str(exc)) from exc
            except (TypeError, ValueError, KeyError) as exc:
                raise ConfigError(f"context {key!r}: {exc}") from exc
        config = cls(**kwargs)
        config.validate()
        return config

    def validate(self) -> None:
        checks: list[tuple[bool, str]] = [
            (bool(_STAGE.match(self.stage)), "stage: letters, digits and _ only"),
            (0 <= self.min_runners <= self.max_runners, "minRunners must be between 0 and maxRunners"),
            (self.max_runners >= 1, "maxRunners must be at least 1"),
            (self.target_jobs_per_runner > 0, "targetJobsPerRunner must be positive"),
            (self.scale_out_cooldown_seconds >= 0, "scaleOutCooldownSeconds must be at least 0"),
            (self.scale_in_cooldown_seconds >= 0, "scaleInCooldownSeconds must be at least 0"),
            *(
                (
                    t.max_jobs_in_flight is None or t.max_jobs_in_flight >= 1,
                    f"tiers.{t.name}.maxJobsInFlight must be at least 1 (or absent: no limit)",
                )
                for t in self.tiers
            ),
            (
                STOP_TIMEOUT_MARGIN_SECONDS < self.stop_timeout_seconds <= MAX_STOP_TIMEOUT_SECONDS,
                f"stopTimeoutSeconds must be in ({STOP_TIMEOUT_MARGIN_SECONDS}, {MAX_STOP_TIMEOUT_SECONDS}]",
            ),
            (bool(self.instance_types), "instanceTypes must name at least one instance type"),
            (self.model_cache_gib >= 1, "modelCacheGiB must be at least 1"),
            (
                self.model_cache_gib <= self.model_cache_volume_gib,
                "modelCacheGiB must fit its gp3 volume (modelCacheVolumeGiB)",
            ),
            (bool(_S3_PREFIX.match(self.models_prefix)), "modelsPrefix: a key prefix such as models/"),
            (
                not self.models_bucket or bool(_BUCKET.match(self.models_bucket)),
                "modelsBucket must be an S3 bucket name",
            ),
            (self.gpu_price_per_hour >= 0, "gpuPricePerHour must not be negative"),
            (0 <= self.xray_sampling_rate <= 1, "xraySamplingRate must be between 0 and 1"),
            (
                self.lambda_system_log_level in ("DEBUG", "INFO", "WARN"),
                "lambdaSystemLogLevel must be DEBUG, INFO or WARN",
            ),
            (
                GP3_THROUGHPUT_MIBPS[0] <= self.root_volume_throughput_mibps <= GP3_THROUGHPUT_MIBPS[1],
                f"rootVolumeThroughputMiBps must be in {list(GP3_THROUGHPUT_MIBPS)}",
            ),
            (
                GP3_IOPS[0] <= self.root_volume_iops <= GP3_IOPS[1],
                f"rootVolumeIops must be in {list(GP3_IOPS)}",
            ),
            (
                self.root_volume_throughput_mibps * 4 <= self.root_volume_iops,
                "rootVolumeThroughputMiBps may be at most rootVolumeIops / 4 (a gp3 limit)",
            ),
            (0 <= self.warm_pool_size <= self.max_runners, "warmPoolSize must be between 0 and maxRunners"),
            (
                self.warm_pool_size == 0 or len(self.instance_types) == 1,
                "warmPoolSize needs a single instance type: EC2 Auto Scaling has no warm pools for "
                "mixed-instances groups",
            ),
            (
                self.warm_pool_state in WARM_POOL_STATES,
                f"warmPoolState must be one of {WARM_POOL_STATES}",
            ),
            *(
                (
                    len(s.cron.split()) == _CRON_FIELDS and 0 <= s.min_runners <= self.max_runners,
                    f"scheduledMinRunners[{i}]: cron needs {_CRON_FIELDS} fields (minutes hours day month "
                    f"weekday year, e.g. '0 8 ? * MON-FRI *') and minRunners must be in [0, maxRunners], "
                    f"got {s.cron!r} and {s.min_runners}",
                )
                for i, s in enumerate(self.scheduled_min_runners)
            ),
            *(
                (
                    s.time_zone is None or s.time_zone in zoneinfo.available_timezones(),
                    f"scheduledMinRunners[{i}]: timeZone {s.time_zone!r} is not an IANA time zone "
                    "like Europe/Paris",
                )
                for i, s in enumerate(self.scheduled_min_runners)
            ),
            *(
                (
                    origin == "*" or bool(_ORIGIN.match(origin)),
                    f"corsAllowedOrigins: {origin!r} is not an origin like https://app.example.com (or '*')",
                )
                for origin in self.cors_allowed_origins
            ),
            (
                (self.custom_domain_name is None) == (self.certificate_arn is None),
                "customDomainName and certificateArn go together: give both or neither",
            ),
            (
                self.custom_domain_name is None or bool(_DOMAIN.match(self.custom_domain_name)),
                f"customDomainName: {self.custom_domain_name!r} is not a lower-case DNS name like "
                "api.example.com",
            ),
            (
                self.certificate_arn is None or bool(_CERTIFICATE_ARN.match(self.certificate_arn)),
                f"certificateArn: {self.certificate_arn!r} is not an ACM certificate ARN",
            ),
            (self.api_reserved_concurrency >= 1, "apiReservedConcurrency must be at least 1"),
            (
                0 <= self.prefer_wait_max_seconds <= MAX_PREFER_WAIT_SECONDS,
                f"preferWaitMaxSeconds must be in [0, {MAX_PREFER_WAIT_SECONDS}]",
            ),
            (
                self.api_peak_concurrency <= self.api_reserved_concurrency,
                f"apiReservedConcurrency {self.api_reserved_concurrency} is below what the API needs at its "
                f"throttle: burstLimit + rateLimit x (preferWaitMaxSeconds + {REQUEST_OVERHEAD_SECONDS}) = "
                f"{self.api_peak_concurrency}; raise it, or lower apiThrottle or preferWaitMaxSeconds",
            ),
            (1 <= self.max_receive_count <= 1000, "maxReceiveCount must be in [1, 1000]"),
            (0 < self.visibility_timeout_seconds <= 43_200, "visibilityTimeoutSeconds must be in (0, 43200]"),
            (1 <= self.queue_retention_days <= 14, "queueRetentionDays must be in [1, 14]"),
            (1 <= self.dlq_retention_days <= 14, "dlqRetentionDays must be in [1, 14]"),
            (self.lambda_architecture in ARCHITECTURES, f"lambdaArchitecture must be one of {ARCHITECTURES}"),
            # The stack is environment-agnostic (synthesis needs no account), which allows two AZs.
            (1 <= self.max_azs <= 2, "maxAzs must be 1 or 2"),
            (0 <= self.nat_gateways <= self.max_azs, "natGateways must be in [0, maxAzs]"),
            (
                all(t.quota_period in QUOTA_PERIODS for t in self.tiers),
                f"every tier's quotaPeriod must be one of {QUOTA_PERIODS}",
            ),
            (len({t.name for t in self.tiers}) == len(self.tiers), "tier names must be unique"),
            (
                self.log_retention_days in LOG_RETENTION,
                f"logRetentionDays must be one of {sorted(LOG_RETENTION)}",
            ),
        ]
        problems = [message for ok, message in checks if not ok]
        if problems:
            raise ConfigError("; ".join(problems))


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _int(value: Any) -> int:
    return int(value)


def _float(value: Any) -> float:
    return float(value)


def _str(value: Any) -> str:
    return str(value)


def parse_bool(value: Any) -> bool:
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise ValueError(f"not a boolean: {value!r}")
    return bool(value)


def _strings(value: Any) -> tuple[str, ...]:
    parsed = value
    if isinstance(value, str):
        parsed = json.loads(value) if value.lstrip().startswith("[") else value.split(",")
    return tuple(str(item).strip() for item in parsed if str(item).strip())


def _optional_str(value: Any) -> str | None:
    return str(value).strip() or None


def _scheduled_minimums(value: Any) -> tuple[ScheduledMinimum, ...]:
    specs = _json(value)
    if not isinstance(specs, list):
        raise ValueError('expected a list of {"cron": "0 8 ? * MON-FRI *", "minRunners": 2, "timeZone": ...}')
    return tuple(
        ScheduledMinimum(
            cron=str(spec["cron"]).strip(),
            min_runners=int(spec["minRunners"]),
            time_zone=_optional_str(spec.get("timeZone") or ""),
        )
        for spec in specs
    )


def _throttle(value: Any) -> Throttle:
    spec = _json(value)
    return Throttle(rate_limit=float(spec["rateLimit"]), burst_limit=int(spec["burstLimit"]))


def _tier(name: str, spec: Mapping[str, Any]) -> Tier:
    return Tier(
        name=name,
        rate_limit=float(spec["rateLimit"]),
        burst_limit=int(spec["burstLimit"]),
        quota=int(spec["quota"]),
        quota_period=str(spec.get("quotaPeriod", "MONTH")).upper(),
        max_jobs_in_flight=(
            int(spec["maxJobsInFlight"]) if spec.get("maxJobsInFlight") is not None else None
        ),
        priority=parse_bool(spec.get("priority", False)),
    )


def _tiers(value: Any) -> tuple[Tier, ...]:
    specs = _json(value)
    if not isinstance(specs, Mapping) or not specs:
        raise ValueError("expected an object of tier name -> {rateLimit, burstLimit, quota, quotaPeriod}")
    return tuple(_tier(str(name), spec) for name, spec in specs.items())


# context key -> (ServiceConfig attribute, parser)
CONTEXT_KEYS: dict[str, tuple[str, Any]] = {
    "stage": ("stage", _str),
    "comfyuiImage": ("comfyui_image", _str),
    "comfyuiPort": ("comfyui_port", _int),
    "comfyuiMemoryReservationMiB": ("comfyui_memory_reservation_mib", _int),
    "comfyuiInputDir": ("comfyui_input_dir", _str),
    "comfyuiOutputDir": ("comfyui_output_dir", _str),
    "comfyuiTempDir": ("comfyui_temp_dir", _str),
    "comfyuiUser": ("comfyui_user", _str),
    "runnerMemoryReservationMiB": ("runner_memory_reservation_mib", _int),
    "instanceTypes": ("instance_types", _strings),
    "gpuPricePerHour": ("gpu_price_per_hour", _float),
    "rootVolumeGiB": ("root_volume_gib", _int),
    "rootVolumeThroughputMiBps": ("root_volume_throughput_mibps", _int),
    "rootVolumeIops": ("root_volume_iops", _int),
    "warmPoolSize": ("warm_pool_size", _int),
    "warmPoolState": ("warm_pool_state", _str),
    "prePullImage": ("pre_pull_image", parse_bool),
    "modelsBucket": ("models_bucket", _str),
    "modelsPrefix": ("models_prefix", _str),
    "modelCacheGiB": ("model_cache_gib", _int),
    "modelCacheVolumeGiB": ("model_cache_volume_gib", _int),
    "warmupWorkflow": ("warmup_workflow", _str),
    "scheduledMinRunners": ("scheduled_min_runners", _scheduled_minimums),
    "minRunners": ("min_runners", _int),
    "maxRunners": ("max_runners", _int),
    "targetJobsPerRunner": ("target_jobs_per_runner", _float),
    "scaleOutCooldownSeconds": ("scale_out_cooldown_seconds", _int),
    "scaleInCooldownSeconds": ("scale_in_cooldown_seconds", _int),
    "pools": ("pools", parse_pool_specs),
    "stopTimeoutSeconds": ("stop_timeout_seconds", _int),
    "maxAzs": ("max_azs", _int),
    "natGateways": ("nat_gateways", _int),
    "visibilityTimeoutSeconds": ("visibility_timeout_seconds", _int),
    "maxReceiveCount": ("max_receive_count", _int),
    "queueRetentionDays": ("queue_retention_days", _int),
    "dlqRetentionDays": ("dlq_retention_days", _int),
    "outputRetentionDays": ("output_retention_days", _int),
    "inputRetentionDays": ("input_retention_days", _int),
    "workflowRetentionDays": ("workflow_retention_days", _int),
    "corsAllowedOrigins": ("cors_allowed_origins", _strings),
    "customDomainName": ("custom_domain_name", _optional_str),
    "certificateArn": ("certificate_arn", _optional_str),
    "logRetentionDays": ("log_retention_days", _int),
    "logLevel": ("log_level", _str),
    "lambdaSystemLogLevel": ("lambda_system_log_level", _str),
    "xraySamplingRate": ("xray_sampling_rate", _float),
    "lambdaArchitecture": ("lambda_architecture", _str),
    "snapStart": ("snap_start", parse_bool),
    "apiMemoryMiB": ("api_memory_mib", _int),
    "apiReservedConcurrency": ("api_reserved_concurrency", _int),
    "preferWaitMaxSeconds": ("prefer_wait_max_seconds", _int),
    "functionMemoryMiB": ("function_memory_mib", _int),
    "apiThrottle": ("api_throttle", _throttle),
    "webSocketThrottle": ("websocket_throttle", _throttle),
    "tiers": ("tiers", _tiers),
    "queueAgeAlarmSeconds": ("queue_age_alarm_seconds", _int),
    "alarmTopicArn": ("alarm_topic_arn", _str),
    "webAclArn": ("web_acl_arn", _str),
    "retainData": ("retain_data", parse_bool),
    "tableDeletionProtection": ("table_deletion_protection", parse_bool),
    "createApiGatewayAccountRole": ("create_api_gateway_account_role", parse_bool),
}
