"""The console's distribution: private files through OAC, /v1/* to the API uncached, a strict CSP, uploads."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infra.conftest import Synth

pytestmark = pytest.mark.infra


def _one(synth: Synth, resource_type: str) -> dict[str, Any]:
    (properties,) = synth.resources(resource_type).values()
    return properties


def _text(value: Any) -> str:
    """A CloudFormation value with its intrinsics as JSON text, to look for names and fragments in it."""
    return json.dumps(value)


def test_the_files_are_private_and_read_through_origin_access_control(synth: Synth) -> None:
    console = synth.stack.console
    files = synth.json["Resources"][synth.logical_id(console.bucket)]["Properties"]
    assert files["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    config = _one(synth, "AWS::CloudFront::Distribution")["DistributionConfig"]
    assert config["DefaultRootObject"] == "index.html"
    s3_origin = next(origin for origin in config["Origins"] if "S3OriginConfig" in origin)
    assert "OriginAccessControlId" in s3_origin
    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"
    policies = synth.resources("AWS::S3::BucketPolicy")
    console_policy = next(
        p for p in policies.values() if p["Bucket"] == {"Ref": synth.logical_id(console.bucket)}
    )
    grants = _text(console_policy["PolicyDocument"])
    assert "cloudfront.amazonaws.com" in grants
    assert "AWS:SourceArn" in grants


def test_v1_goes_to_the_rest_api_uncached_with_every_method_and_header(synth: Synth) -> None:
    config = _one(synth, "AWS::CloudFront::Distribution")["DistributionConfig"]
    (behavior,) = config["CacheBehaviors"]
    assert behavior["PathPattern"] == "/v1/*"
    assert set(behavior["AllowedMethods"]) == {"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"}
    # AWS's managed CachingDisabled and AllViewerExceptHostHeader policies.
    assert behavior["CachePolicyId"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
    assert behavior["OriginRequestPolicyId"] == "b689b0a8-53d0-40ab-baf2-68738e2966ac"
    api_origin = next(origin for origin in config["Origins"] if origin["Id"] == behavior["TargetOriginId"])
    assert api_origin["OriginPath"] == f"/{synth.stack.config.stage}"
    assert api_origin["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    assert synth.logical_id(synth.stack.rest.api) in _text(api_origin["DomainName"])


def test_the_pages_carry_a_csp_naming_only_the_api_websocket_and_s3(synth: Synth) -> None:
    headers = _one(synth, "AWS::CloudFront::ResponseHeadersPolicy")["ResponseHeadersPolicyConfig"]
    security = headers["SecurityHeadersConfig"]
    policy = _text(security["ContentSecurityPolicy"]["ContentSecurityPolicy"])
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy
    assert synth.logical_id(synth.stack.websocket.api) in policy
    assert ".s3." in policy
    assert security["FrameOptions"]["FrameOption"] == "DENY"
    assert security["StrictTransportSecurity"]["AccessControlMaxAgeSec"] == 365 * 24 * 3600


def test_uploads_may_be_put_from_the_console_origin(synth: Synth) -> None:
    bucket = synth.json["Resources"][synth.logical_id(synth.stack.data.bucket)]["Properties"]
    rules = bucket["CorsConfiguration"]["CorsRules"]
    distribution = synth.logical_id(synth.stack.console.distribution)
    (console_rule,) = [rule for rule in rules if distribution in _text(rule["AllowedOrigins"])]
    assert set(console_rule["AllowedMethods"]) == {"PUT", "POST"}
    assert console_rule["AllowedHeaders"] == ["Content-Type"]


def test_the_console_url_is_an_output(synth: Synth) -> None:
    assert "ConsoleUrl" in synth.json["Outputs"]
