"""How much X-Ray traces: one sampling rule for the REST API's stage, a fixed share with no reservoir.

X-Ray's default rule traces the first request each second and 5 % of the rest, which at a million jobs
a month (about 0.4 requests a second) is every request. This rule traces ``xraySamplingRate`` of them
whatever the traffic; the functions behind the API trace when it did (pass-through tracing).
"""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_xray as xray
from constructs import Construct

from infra.config import ServiceConfig

# Lower numbers win; the default rule is 10000.
RULE_PRIORITY = 1000


def rest_sampling_rule(
    scope: Construct, api: apigw.RestApi, stage: apigw.Stage, config: ServiceConfig
) -> xray.CfnSamplingRule:
    return xray.CfnSamplingRule(
        scope,
        "RestSampling",
        sampling_rule=xray.CfnSamplingRule.SamplingRuleProperty(
            # At most 32 characters, unique in the account and region: the API's id is both.
            rule_name=f"rest-{api.rest_api_id}",
            priority=RULE_PRIORITY,
            fixed_rate=config.xray_sampling_rate,
            reservoir_size=0,
            service_name="*",
            service_type="AWS::ApiGateway::Stage",
            host="*",
            http_method="*",
            url_path="*",
            resource_arn=f"arn:{Aws.PARTITION}:apigateway:{Aws.REGION}::/restapis/{api.rest_api_id}/stages/{stage.stage_name}",
            version=1,
        ),
    )
