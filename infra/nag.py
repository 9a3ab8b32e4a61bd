"""The cdk-nag (AwsSolutions) findings this service acknowledges, each with why it is acceptable here.

cdk-nag 3 reads acknowledgements from CDK's ``Validations.of(scope).acknowledge``; an IAM5 finding is
acknowledged per wildcard (``AwsSolutions-IAM5[Resource::...]``), so a new wildcard is a new finding.
Everything is in this one file so that a reviewer sees the whole list at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Acknowledgment, CfnResource, Stack, Validations
from constructs import IConstruct

from infra.function import ServiceFunction
from shared.names import S3Prefix

if TYPE_CHECKING:
    from infra.runner import GpuRunners
    from infra.stack import ComfyApiStack

# A reason must say something specific; the tests hold every acknowledgement to this too.
MIN_REASON_LENGTH = 60


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    if len(reason) < MIN_REASON_LENGTH:
        raise ValueError(f"give {rule} a specific reason, not {reason!r}")
    Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))


def _token(construct: IConstruct) -> str:
    """How cdk-nag writes a reference to this construct's resource in a finding id."""
    resource = construct.node.default_child
    assert isinstance(resource, CfnResource)
    return Stack.of(construct).get_logical_id(resource)


def _object_prefix_finding(bucket: IConstruct, prefix: str) -> str:
    return f"AwsSolutions-IAM5[Resource::<{_token(bucket)}.Arn>/{prefix}/*]"


# Why each acknowledged finding is acceptable here. Keyed by rule (and what it is about).
REASONS = {
    "prefix": (
        "Objects are keyed {prefix}/<owner>/<id>/...; the role may touch only this one prefix, and the "
        "keys below it are made per job at run time, so a prefix wildcard is the narrowest grant"
    ),
    "connections": (
        "ManageConnections on this API's own stage only; connection ids exist only at run time, so the "
        "@connections/<id> part (and the method) cannot be named in advance"
    ),
    "models": (
        "Models are keyed <prefix><ComfyUI folder>/<name>, uploaded by the platform team at any time; the "
        "role may only read (GetObject) under the model library's prefix, never write"
    ),
    "xray": (
        "X-Ray's PutTraceSegments and PutTelemetryRecords have no resource-level permissions: AWS "
        "requires Resource '*' for them (Tracing.ACTIVE); the role's other statements name their resources"
    ),
    "stream-xray": (
        "X-Ray's PutTraceSegments and PutTelemetryRecords, and dynamodb:ListStreams that the stream's event "
        "source mapping needs, have no resource-level permissions (AWS requires '*'); the stream's own "
        "reads (DescribeStream, GetShardIterator, GetRecords) name the jobs table's stream"
    ),
    "runtime": (
        "The service targets Python 3.11 (pyproject requires-python, the runner's python:3.11 image, wheels "
        "bundled for cp311); the Lambda runtime moves together with the code, not ahead of it"
    ),
    "instance-submit": (
        "CDK's ECS container-instance policy: the agent's SubmitContainerStateChange, SubmitTaskStateChange "
        "and SubmitAttachmentStateChanges, on this cluster's ARN only"
    ),
    "instance-any": (
        "CDK's ECS container-instance policy: ecs:DiscoverPollEndpoint and ecr:GetAuthorizationToken have "
        "no resource-level permissions, ecs:Poll and StartTelemetrySession are conditioned on this cluster, "
        "and the Docker awslogs driver on EC2 writes with the instance's credentials"
    ),
    "execution-any": (
        "ecr:GetAuthorizationToken has no resource-level permissions (AWS requires '*'); the image pull "
        "itself is granted on the runner's asset repository (and the ComfyUI repository) only"
    ),
    "task-protection": (
        "Task scale-in protection is set by the runner through the ECS agent for its own task, whose id "
        "exists only at run time; the grant names this cluster's tasks and nothing else"
    ),
    "pre-pull": (
        "A launching GPU instance finds its own Auto Scaling group's name to end the pre-pull lifecycle "
        "hook; DescribeAutoScalingInstances has no resource-level permissions (AWS requires '*')"
    ),
    "own-group": (
        "CompleteLifecycleAction on this one Auto Scaling group, named; the '*' is the group's id, which "
        "the ARN format requires and CloudFormation does not expose"
    ),
    "AS3": (
        "No alarm topic named (context alarmTopicArn): the ECS capacity provider drives this group, its "
        "launches and terminations show as ECS service events and Container Insights metrics, and the "
        "queue-age alarm fires when capacity does not come. With alarmTopicArn the group notifies it"
    ),
    "EC26": (
        "cdk-nag cannot follow a MixedInstancesPolicy to its launch template (the rule throws); the "
        "group's one launch template encrypts its only block device, which tests/infra asserts"
    ),
    "ECS2": (
        "The runner's environment holds resource names, URLs and timeouts from shared.settings, none of "
        "them secret; the one secret of the service (the WebSocket token key) is never given to the runner"
    ),
    "rest-APIG4": (
        "Clients authenticate with API keys (apiKeyRequired on every method); the key id is the owner "
        "that every job, read and subscription is scoped to (DESIGN 3). There are no IAM or Cognito users"
    ),
    "COG4": (
        "Callers are services and scripts holding API keys in usage-plan tiers, not Cognito users; the "
        "key id scopes every job to its owner, and usage plans bound what each key may do"
    ),
    "APIG2": (
        "The Lambda proxy validates every body, parameter and header with pydantic and answers RFC 9457 "
        "problem documents naming the failing field; a gateway validator has no model for a proxy route "
        "and would answer in a different error format"
    ),
    "APIG3": (
        "No web ACL named (context webAclArn): API keys, usage-plan quotas and stage throttling bound "
        "what a caller can do; set webAclArn to put the account's WAFv2 web ACL in front of the stage"
    ),
    "ws-APIG4": (
        "API Gateway authorizes a WebSocket connection once, on $connect (which has the token "
        "authorizer); later routes run on the authorized connection and cannot have an authorizer"
    ),
    "account-logs": (
        "API Gateway has one logging role per account and region, shared by every API there, so it must "
        "reach the account's log groups in this region; AWS's documented policy, inline, one account+region"
    ),
    "SMG4": (
        "The secret signs WebSocket tokens that live minutes (ws_token_ttl_seconds); rotating it is one "
        "put-secret-value (docs/deploy.md), after which clients simply fetch fresh tokens, so a rotation "
        "Lambda would add code and no protection"
    ),
    "CFR1": (
        "The console is static files and a proxy to an API that checks an API key on every call: who may "
        "use it is decided by keys and usage plans, not by country"
    ),
    "CFR2": (
        "webAclArn names a regional web ACL, which stays on the REST stage and so still filters /v1/* behind "
        "the distribution; the rest is static files, cached; a CloudFront web ACL would have to live in "
        "us-east-1"
    ),
    "CFR3": (
        "CloudFront standard logs need an ACL-enabled bucket, which this stack has none of (bucket owner "
        "enforced everywhere); every /v1 call is logged in the REST stage's access log with its key id"
    ),
    "CFR4": (
        "The distribution uses the default *.cloudfront.net certificate, with which CloudFront cannot pin a "
        "minimum TLS version; a custom domain and certificate would allow TLSv1.2_2021"
    ),
    "copy-L1": (
        "CDK's AwsCustomResource handler: aws-cdk-lib chooses its runtime and moves it forward; it runs only "
        "during a deploy, putting the console's files into their bucket"
    ),
    "copy-IAM4": (
        "The console's file-copying handler writes its own logs with AWSLambdaBasicExecutionRole; it runs "
        "only during a deploy"
    ),
    "copy-IAM5": (
        "PutObject and DeleteObject on the console bucket's objects, and nothing else: the keys are the "
        "console's file names, one custom resource each, so the bucket's object wildcard is the whole grant"
    ),
}
_ANY_RESOURCE = "AwsSolutions-IAM5[Resource::*]"
_ACCOUNT_LOGS = (
    "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:*]"
)


def acknowledge_findings(stack: ComfyApiStack) -> None:
    config = stack.config
    bucket = stack.data.bucket
    functions: list[ServiceFunction] = [
        stack.api_function,
        stack.dlq_function,
        stack.ws_authorizer,
        stack.ws_routes,
        stack.webhooks.deliverer,
    ]
    for function in (*functions, stack.webhooks.dispatcher):
        acknowledge(function.function, "AwsSolutions-L1", REASONS["runtime"])
    for function in functions:
        acknowledge(function.role, _ANY_RESOURCE, REASONS["xray"])
    acknowledge(stack.webhooks.dispatcher.role, _ANY_RESOURCE, REASONS["stream-xray"])

    # S3 prefixes and @connections, granted in ComfyApiStack._grant and GpuRunners._grant_runner.
    runner_roles = [runners.task_definition.task_role for runners in stack.all_runners]
    prefix_grants = {
        stack.api_function.role: (S3Prefix.OUTPUTS, S3Prefix.INPUTS, S3Prefix.WORKFLOWS),
        stack.dlq_function.role: (S3Prefix.OUTPUTS,),
        stack.ws_routes.role: (S3Prefix.OUTPUTS,),
        **dict.fromkeys(runner_roles, (S3Prefix.OUTPUTS, S3Prefix.INPUTS, S3Prefix.WORKFLOWS)),
        stack.webhooks.dispatcher.role: (S3Prefix.OUTPUTS,),
        stack.webhooks.deliverer.role: (S3Prefix.OUTPUTS,),
    }
    for role, prefixes in prefix_grants.items():
        for prefix in prefixes:
            finding = _object_prefix_finding(bucket, prefix)
            acknowledge(role, finding, REASONS["prefix"].format(prefix=prefix))
    models = stack.models
    if models.bucket is bucket:
        model_finding = f"AwsSolutions-IAM5[Resource::<{_token(bucket)}.Arn>/{models.prefix}*]"
    else:
        model_finding = (
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::{config.models_bucket}/{models.prefix}*]"
        )
    for role in (stack.api_function.role, *runner_roles):
        acknowledge(role, model_finding, REASONS["models"])
    connections = (
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:"
        f"<{_token(stack.websocket.api)}>/{config.stage}/*/@connections/*]"
    )
    for role in (stack.api_function.role, stack.ws_routes.role, stack.dlq_function.role, *runner_roles):
        acknowledge(role, connections, REASONS["connections"])

    # The GPU container instances and the runner task, of every pool.
    for runners in stack.all_runners:
        _acknowledge_runners(stack, runners)

    # The REST API.
    api = stack.rest.api
    for method in api.methods:
        acknowledge(method, "AwsSolutions-APIG4", REASONS["rest-APIG4"])
        acknowledge(method, "AwsSolutions-COG4", REASONS["COG4"])
    acknowledge(api, "AwsSolutions-APIG2", REASONS["APIG2"])
    if not config.web_acl_arn:
        acknowledge(stack.rest.stage, "AwsSolutions-APIG3", REASONS["APIG3"])

    # The WebSocket API.
    for route in stack.websocket.unauthorized_routes:
        acknowledge(route, "AwsSolutions-APIG4", REASONS["ws-APIG4"])

    if stack.api_gateway_account is not None:
        acknowledge(stack.api_gateway_account.role, _ACCOUNT_LOGS, REASONS["account-logs"])
    acknowledge(stack.ws_token_secret, "AwsSolutions-SMG4", REASONS["SMG4"])
    _acknowledge_console(stack)


def _acknowledge_runners(stack: ComfyApiStack, runners: GpuRunners) -> None:
    config = stack.config
    acknowledge(runners.instance_role, "AwsSolutions-IAM5[Action::ecs:Submit*]", REASONS["instance-submit"])
    acknowledge(runners.instance_role, _ANY_RESOURCE, REASONS["instance-any"])
    acknowledge(runners.task_definition.obtain_execution_role(), _ANY_RESOURCE, REASONS["execution-any"])
    own_tasks = (
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecs:<AWS::Region>:<AWS::AccountId>:task/"
        f"<{_token(runners.cluster)}>/*]"
    )
    acknowledge(runners.task_definition.task_role, own_tasks, REASONS["task-protection"])
    pre_pull_policy = runners.warm_start.pre_pull_policy if runners.warm_start else None
    if pre_pull_policy is not None:
        acknowledge(pre_pull_policy, _ANY_RESOURCE, REASONS["pre-pull"])
        own_group = (
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:autoscaling:<AWS::Region>:<AWS::AccountId>:"
            f"autoScalingGroup:*:autoScalingGroupName/<{_token(runners.auto_scaling_group)}>]"
        )
        acknowledge(pre_pull_policy, own_group, REASONS["own-group"])
    if not config.alarm_topic_arn:
        acknowledge(runners.auto_scaling_group, "AwsSolutions-AS3", REASONS["AS3"])
    if len(runners.pool.instance_types) > 1 or runners.pool.spot:
        acknowledge(runners.auto_scaling_group, "AwsSolutions-EC26", REASONS["EC26"])
    acknowledge(runners.task_definition, "AwsSolutions-ECS2", REASONS["ECS2"])


def _acknowledge_console(stack: ComfyApiStack) -> None:
    distribution = stack.console.distribution
    for rule in ("CFR1", "CFR2", "CFR3", "CFR4"):
        acknowledge(distribution, f"AwsSolutions-{rule}", REASONS[rule])
    # The role of AwsCustomResource's handler (a singleton at the stack's root), which copies the files.
    role = stack.console.copy_role
    acknowledge(
        role,
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
        "AWSLambdaBasicExecutionRole]",
        REASONS["copy-IAM4"],
    )
    acknowledge(
        role, f"AwsSolutions-IAM5[Resource::<{_token(stack.console.bucket)}.Arn>/*]", REASONS["copy-IAM5"]
    )
    for handler in stack.node.children:
        if handler.node.id.startswith("AWS679f53fac002430cb0da5b7982bd2287"):
            acknowledge(handler, "AwsSolutions-L1", REASONS["copy-L1"])
