"""The web console: static files in a private bucket behind CloudFront (origin access control).

The same distribution forwards ``/v1/*`` to the REST API, so the console calls the API on its own origin:
no CORS on the API at all, and the API key never leaves a same-origin request. The WebSocket API and the
artifact bucket's presigned URLs stay on their own hosts; the Content Security Policy names exactly those.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Aws, Duration, Fn, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import custom_resources as cr
from constructs import Construct

from infra.config import ServiceConfig
from shared.console import CONTENT_TYPES, content_security_policy

CONSOLE_DIR = Path(__file__).resolve().parent.parent / "console"


class Console(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: ServiceConfig,
        rest_api: apigw.IRestApi,
        websocket_api_id: str,
        log_bucket: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        self.bucket = s3.Bucket(
            self,
            "Files",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            server_access_logs_bucket=log_bucket,
            server_access_logs_prefix="console/",
            # Nothing here but a copy of console/, whose objects the File resources below delete with them.
            removal_policy=RemovalPolicy.DESTROY,
        )
        # Presigned URLs are virtual-hosted (https://<bucket>.s3[.<region>].amazonaws.com). The artifact
        # bucket is not named here: its CORS rule names this distribution, and a reference back would be a
        # dependency cycle. So any bucket of the region, for images, media and uploads only: script-src is
        # 'self', so no script of another origin can reach them.
        bucket_hosts = [f"https://*.s3.{Aws.URL_SUFFIX}", f"https://*.s3.{Aws.REGION}.{Aws.URL_SUFFIX}"]
        websocket_origin = f"wss://{websocket_api_id}.execute-api.{Aws.REGION}.{Aws.URL_SUFFIX}"
        self.content_security_policy = content_security_policy([websocket_origin], bucket_hosts)
        headers = cloudfront.ResponseHeadersPolicy(
            self,
            "Headers",
            comment="The console's Content Security Policy and security headers",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=self.content_security_policy, override=True
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True
                ),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.NO_REFERRER, override=True
                ),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=Duration.days(365), include_subdomains=True, override=True
                ),
            ),
        )
        api_origin = origins.HttpOrigin(
            # From the API's id alone (not its deployment), so the distribution does not wait on methods.
            f"{rest_api.rest_api_id}.execute-api.{Aws.REGION}.{Aws.URL_SUFFIX}",
            origin_path=f"/{config.stage}",
            protocol_policy=cloudfront.OriginProtocolPolicy.HTTPS_ONLY,
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment="comfy-api-service console, and its API under /v1/",
            default_root_object="index.html",
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                response_headers_policy=headers,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
            ),
            additional_behaviors={
                "/v1/*": cloudfront.BehaviorOptions(
                    origin=api_origin,
                    viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
                    allowed_methods=cloudfront.AllowedMethods.ALLOW_ALL,
                    # Every answer is per key and per moment: nothing is cached, every header and query
                    # string (x-api-key, Idempotency-Key, Prefer, cursor) reaches the API.
                    cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
                    origin_request_policy=cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
                ),
            },
        )
        self.files = self._copy_files()

    def _copy_files(self) -> list[cr.AwsCustomResource]:
        """One PutObject per file, with its content type, revalidated on every load (``no-cache``).

        Rather than CDK's BucketDeployment, whose handler needs wildcard S3 actions: these need exactly
        PutObject and DeleteObject on this bucket's objects. The files are small text (the whole console is
        tens of KiB), so they travel in the template itself.
        """
        # One role for every file (AwsCustomResource would add a policy per file to its singleton's role).
        self.copy_role = iam.Role(
            self,
            "CopyRole",
            description="Writes the console's files into its bucket during a deploy",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            managed_policies=[
                iam.ManagedPolicy.from_managed_policy_arn(
                    self,
                    "BasicExecution",
                    Fn.sub("arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"),
                )
            ],
        )
        self.copy_role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject", "s3:DeleteObject"], resources=[self.bucket.arn_for_objects("*")]
            )
        )
        resources = []
        for path in sorted(p for p in CONSOLE_DIR.rglob("*") if p.is_file()):
            key = path.relative_to(CONSOLE_DIR).as_posix()
            put = cr.AwsSdkCall(
                service="S3",
                action="putObject",
                parameters={
                    "Bucket": self.bucket.bucket_name,
                    "Key": key,
                    "Body": path.read_text(encoding="utf-8"),
                    "ContentType": CONTENT_TYPES.get(path.suffix, "application/octet-stream"),
                    "CacheControl": "no-cache",
                },
                # The key, not the content: a changed file is an update (put again), never a replacement,
                # whose delete of the old resource would remove the object just written.
                physical_resource_id=cr.PhysicalResourceId.of(key),
            )
            delete = cr.AwsSdkCall(
                service="S3",
                action="deleteObject",
                parameters={"Bucket": self.bucket.bucket_name, "Key": key},
            )
            resources.append(
                cr.AwsCustomResource(
                    self,
                    "File-" + key.replace("/", "-"),
                    on_create=put,
                    on_update=put,
                    on_delete=delete,
                    role=self.copy_role,
                    install_latest_aws_sdk=False,
                )
            )
        return resources

    @property
    def origin(self) -> str:
        return f"https://{self.distribution.distribution_domain_name}"

    @property
    def url(self) -> str:
        return f"{self.origin}/"
