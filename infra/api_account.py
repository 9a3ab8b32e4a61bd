"""The account's API Gateway logging role: one per account and region, shared by every API there."""

from __future__ import annotations

from aws_cdk import Aws, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from constructs import Construct

_LOG_ACTIONS = [
    "logs:CreateLogGroup",
    "logs:CreateLogStream",
    "logs:DescribeLogGroups",
    "logs:DescribeLogStreams",
    "logs:PutLogEvents",
    "logs:GetLogEvents",
    "logs:FilterLogEvents",
]


class ApiGatewayAccount(Construct):
    """Sets the role API Gateway writes access and execution logs with; stages depend on it."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        # Other APIs in the account write through the same role, so its scope is the account's log
        # groups rather than this service's, and it stays when this stack is deleted.
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
            description="API Gateway account-level role that writes API logs to CloudWatch Logs",
            # Inline in the role resource, so a retained role keeps its permissions after the stack goes.
            inline_policies={
                "WriteApiLogs": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(
                            actions=_LOG_ACTIONS,
                            resources=[f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:*"],
                        )
                    ]
                )
            },
        )
        self.role.apply_removal_policy(RemovalPolicy.RETAIN)
        self.account = apigw.CfnAccount(self, "Account", cloud_watch_role_arn=self.role.role_arn)
        self.account.apply_removal_policy(RemovalPolicy.RETAIN)

    def required_by(self, *stages: Construct) -> None:
        """A stage with logging is refused until the account has its role."""
        for stage in stages:
            stage.node.add_dependency(self.account)
