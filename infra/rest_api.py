"""The public REST API: API Gateway REST in front of the api function, API keys, tiers, logs, throttling."""

from __future__ import annotations

import json

from aws_cdk import Aws, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from infra.config import ServiceConfig
from infra.function import ServiceFunction
from infra.tracing import rest_sampling_rule
from shared.names import PUBLIC_REST_PATHS, usage_plan_name

_QUOTA_PERIODS = {"DAY": apigw.Period.DAY, "WEEK": apigw.Period.WEEK, "MONTH": apigw.Period.MONTH}


def _construct_id(path: str) -> str:
    return "".join(part.strip("{}").replace(".", "").capitalize() for part in path.split("/"))


def _access_log_format() -> apigw.AccessLogFormat:
    """One compact JSON line per request, with the API key id (the tenants table says whose key it is)
    and the path (a job's routes name the job). Every line is billed as logs: short names, no spaces,
    the time as epoch milliseconds; the trace id is "-" unless X-Ray sampled the request."""
    fields = {
        "requestId": apigw.AccessLogField.context_request_id(),
        "time": apigw.AccessLogField.context_request_time_epoch(),
        "ip": apigw.AccessLogField.context_identity_source_ip(),
        "apiKeyId": apigw.AccessLogField.context_identity_api_key_id(),
        "method": apigw.AccessLogField.context_http_method(),
        "path": apigw.AccessLogField.context_path(),
        "status": apigw.AccessLogField.context_status(),
        "bytes": apigw.AccessLogField.context_response_length(),
        "latency": apigw.AccessLogField.context_integration_latency(),
        "error": apigw.AccessLogField.context_error_message(),
        "trace": apigw.AccessLogField.context_xray_trace_id(),
    }
    return apigw.AccessLogFormat.custom(json.dumps(fields, separators=(",", ":")))


class RestApi(Construct):
    """``ANY /`` and ``ANY /{proxy+}`` to the api function; the function serves ``/v1/...`` itself."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: ServiceConfig, handler: ServiceFunction
    ) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = logs.LogGroup(
            self, "AccessLogs", retention=config.log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        self.api = apigw.LambdaRestApi(
            self,
            "Api",
            handler=handler.entry,
            proxy=True,
            description="comfy-api-service REST API",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            api_key_source_type=apigw.ApiKeySourceType.HEADER,
            # The account-level logging role is its own construct (ApiGatewayAccount), never one per API.
            cloud_watch_role=False,
            default_method_options=apigw.MethodOptions(api_key_required=True),
            deploy_options=apigw.StageOptions(
                stage_name=config.stage,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=_access_log_format(),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                # Request bodies hold workflows and prompts: never copy them into execution logs.
                data_trace_enabled=False,
                metrics_enabled=True,
                tracing_enabled=True,
                throttling_rate_limit=config.api_throttle.rate_limit,
                throttling_burst_limit=config.api_throttle.burst_limit,
            ),
        )
        self.public_methods = self._public_resources(handler)
        self.stage = self.api.deployment_stage
        self.sampling_rule = rest_sampling_rule(self, self.api, self.stage, config)
        self.usage_plans: dict[str, apigw.UsagePlan] = {}
        for tier in config.tiers:
            plan = self.api.add_usage_plan(
                f"Tier-{tier.name}",
                name=usage_plan_name(Aws.STACK_NAME, tier.name),
                description=f"API keys in the {tier.name} tier",
                throttle=apigw.ThrottleSettings(rate_limit=tier.rate_limit, burst_limit=tier.burst_limit),
                quota=apigw.QuotaSettings(limit=tier.quota, period=_QUOTA_PERIODS[tier.quota_period]),
            )
            plan.add_api_stage(stage=self.stage)
            self.usage_plans[tier.name] = plan

        self.web_acl_association: wafv2.CfnWebACLAssociation | None = None
        if config.web_acl_arn:
            self.web_acl_association = wafv2.CfnWebACLAssociation(
                self, "WebAcl", resource_arn=self.stage.stage_arn, web_acl_arn=config.web_acl_arn
            )

        self._custom_domain_name = config.custom_domain_name
        self.domain: apigw.DomainName | None = None
        if config.custom_domain_name and config.certificate_arn:
            self.domain = apigw.DomainName(
                self,
                "Domain",
                domain_name=config.custom_domain_name,
                certificate=acm.Certificate.from_certificate_arn(self, "Certificate", config.certificate_arn),
                endpoint_type=apigw.EndpointType.REGIONAL,
                security_policy=apigw.SecurityPolicy.TLS_1_2,
            )
            # The domain's root is the stage: https://<domain>/v1/...
            self.domain.add_base_path_mapping(self.api, stage=self.stage)

    def _public_resources(self, handler: ServiceFunction) -> list[apigw.Method]:
        """GET without an API key on the documentation's resources, which win over ``{proxy+}``.

        LambdaRestApi forbids ``root.add_resource`` next to its proxy, so the resources are built directly.
        """
        integration = apigw.LambdaIntegration(handler.entry)
        methods = []
        resources: dict[str, apigw.IResource] = {"": self.api.root}
        for path in PUBLIC_REST_PATHS:
            parent_path = ""
            for part in path.strip("/").split("/"):
                here = f"{parent_path}/{part}"
                if here not in resources:
                    resources[here] = apigw.Resource(
                        self, "Public" + _construct_id(here), parent=resources[parent_path], path_part=part
                    )
                parent_path = here
            methods.append(resources[parent_path].add_method("GET", integration, api_key_required=False))
        return methods

    @property
    def url(self) -> str:
        """The public base URL, ``/v1/`` included: the custom domain's when there is one."""
        if self._custom_domain_name:
            return f"https://{self._custom_domain_name}/v1/"
        return f"{self.api.url}v1/"

    @property
    def origins(self) -> list[str]:
        """The browser origins the API is served from (pages it serves call S3 from these)."""
        origins = [f"https://{self.api.rest_api_id}.execute-api.{Aws.REGION}.{Aws.URL_SUFFIX}"]
        if self._custom_domain_name:
            origins.append(f"https://{self._custom_domain_name}")
        return origins
