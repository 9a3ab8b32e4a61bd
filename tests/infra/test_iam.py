"""Least privilege: every policy document in the template, walked statement by statement.

No Allow statement may name a wildcard action or ``Resource: "*"`` unless it is listed below with the
reason AWS requires it. Each role's actions are pinned too, so a new permission is a visible change.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from shared.names import COMFYUI_CATALOG_KEY
from tests.infra.conftest import Synth

pytestmark = pytest.mark.infra

# Actions that may have Resource "*", and why.
RESOURCE_STAR_ALLOWED: dict[str, str] = {
    "xray:PutTraceSegments": "X-Ray has no resource-level permissions (Lambda active tracing)",
    "xray:PutTelemetryRecords": "X-Ray has no resource-level permissions (Lambda active tracing)",
    "dynamodb:ListStreams": "no resource-level permissions; the stream event source mapping needs it",
    "ecr:GetAuthorizationToken": "registry-wide token, no resource-level permissions (image pulls)",
    "ecs:DiscoverPollEndpoint": "no resource-level permissions (ECS container agent)",
    "ecs:Poll": "ECS agent; must carry a condition that names this cluster (checked below)",
    "ecs:StartTelemetrySession": "ECS agent; must carry a condition that names this cluster (checked below)",
    "logs:CreateLogStream": "only the container-instance role: Docker's awslogs driver on EC2 (checked below)",
    "logs:PutLogEvents": "only the container-instance role: Docker's awslogs driver on EC2 (checked below)",
    "autoscaling:DescribeAutoScalingInstances": "only the container-instance role: a booting instance "
    "finds its group to end the pre-pull lifecycle hook; no resource-level permissions (checked below)",
}
CONDITIONED = {"ecs:Poll", "ecs:StartTelemetrySession"}
INSTANCE_ROLE_ONLY = {"logs:CreateLogStream", "logs:PutLogEvents", "autoscaling:DescribeAutoScalingInstances"}
# Wildcard actions that may appear, and why.
ACTION_WILDCARDS_ALLOWED: dict[str, str] = {
    "ecs:Submit*": "CDK's container-instance policy: the agent's three Submit*StateChange calls, on the cluster",
}
# Managed policies that may be attached, and to what.
MANAGED_POLICIES_ALLOWED = {
    "AWSLambdaBasicExecutionRole": (
        "the logs of deploy-time handlers: CDK's provider that strips the VPC default security group's "
        "rules, and the one that copies the console's files"
    ),
}

_POLICY_PROPERTIES = {
    "AWS::IAM::Policy": "PolicyDocument",
    "AWS::IAM::ManagedPolicy": "PolicyDocument",
    "AWS::S3::BucketPolicy": "PolicyDocument",
    "AWS::SQS::QueuePolicy": "PolicyDocument",
    "AWS::SNS::TopicPolicy": "PolicyDocument",
    "AWS::SecretsManager::ResourcePolicy": "ResourcePolicy",
    "AWS::KMS::Key": "KeyPolicy",
}


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _documents(synth: Synth) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(logical id, resource properties, policy document) for every policy in the template."""
    for logical_id, resource in synth.json["Resources"].items():
        props = resource.get("Properties", {})
        key = _POLICY_PROPERTIES.get(resource["Type"])
        if key and key in props:
            yield logical_id, props, props[key]
        if resource["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                yield logical_id, props, policy["PolicyDocument"]


def _allow_statements(synth: Synth) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    for logical_id, props, document in _documents(synth):
        for statement in document["Statement"]:
            if statement["Effect"] == "Allow":
                yield logical_id, props, statement


def test_the_walk_sees_every_role_policy(synth: Synth) -> None:
    walked = {logical_id for logical_id, _, _ in _documents(synth)}
    assert set(synth.resources("AWS::IAM::Policy")) <= walked
    assert len(walked) >= 10


def test_no_allow_statement_has_a_wildcard_action_except_the_listed_ones(synth: Synth) -> None:
    offending = []
    for logical_id, _, statement in _allow_statements(synth):
        for action in _listed(statement.get("Action", [])):
            if (
                action == "*"
                or action.endswith(":*")
                or ("*" in action and action not in ACTION_WILDCARDS_ALLOWED)
            ):
                offending.append((logical_id, action))
    assert not offending


def test_no_allow_statement_grants_every_resource_except_where_aws_requires_it(synth: Synth) -> None:
    instance_role = synth.logical_id(synth.stack.runners.instance_role)
    offending = []
    for logical_id, props, statement in _allow_statements(synth):
        if "*" not in _listed(statement.get("Resource", [])):
            continue
        for action in _listed(statement["Action"]):
            if action not in RESOURCE_STAR_ALLOWED:
                offending.append((logical_id, action, "not an action that needs Resource '*'"))
            elif action in CONDITIONED and not statement.get("Condition"):
                offending.append((logical_id, action, "needs a condition"))
            elif action in INSTANCE_ROLE_ONLY and {"Ref": instance_role} not in props.get("Roles", []):
                offending.append((logical_id, action, "allowed on the container-instance role only"))
    assert not offending


def test_no_principal_is_granted_everything(synth: Synth) -> None:
    for _, _, statement in _allow_statements(synth):
        assert statement.get("Principal") not in ("*", {"AWS": "*"})


def test_only_the_listed_managed_policies_are_attached(synth: Synth) -> None:
    attached = {
        json.dumps(arn).rsplit("/", 1)[-1].strip('"}')
        for role in synth.resources("AWS::IAM::Role").values()
        for arn in role.get("ManagedPolicyArns", [])
    }
    assert attached <= set(MANAGED_POLICIES_ALLOWED)


def _actions_of(synth: Synth, role_construct: Any) -> set[str]:
    role_id = synth.logical_id(role_construct)
    actions: set[str] = set()
    for _, props, statement in _allow_statements(synth):
        if {"Ref": role_id} in props.get("Roles", []):
            actions.update(_listed(statement["Action"]))
    return actions


_LOGS_AND_TRACES = {
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
}


def test_each_process_has_exactly_its_actions(synth: Synth) -> None:
    stack = synth.stack
    expected = {
        stack.api_function.role: {
            "dynamodb:PutItem",
            "dynamodb:GetItem",
            # A listing reads its page of jobs whole: the by-owner index holds their keys only.
            "dynamodb:BatchGetItem",
            "dynamodb:UpdateItem",
            "dynamodb:Query",
            "sqs:SendMessage",
            "s3:GetObject",
            "s3:PutObject",
            "s3:DeleteObject",
            "s3:ListBucket",
            "secretsmanager:GetSecretValue",
            # a job canceled while queued is told to its subscribers (a gone one's subscription deleted);
            # a running job's cancel mark, deleted when the cancel is not written
            "dynamodb:DeleteItem",
            "execute-api:ManageConnections",
        },
        stack.dlq_function.role: {
            "dynamodb:GetItem",
            "dynamodb:UpdateItem",
            "dynamodb:Query",
            "dynamodb:DeleteItem",
            "s3:GetObject",
            "execute-api:ManageConnections",
            # the SQS event source
            "sqs:ReceiveMessage",
            "sqs:ChangeMessageVisibility",
            "sqs:GetQueueUrl",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
        },
        stack.ws_authorizer.role: {"secretsmanager:GetSecretValue"},
        stack.webhooks.dispatcher.role: {
            "dynamodb:Query",
            "sqs:SendMessage",
            "events:PutEvents",
            "s3:GetObject",
            # the stream event source, and its failure destination
            "dynamodb:ListStreams",
            "dynamodb:DescribeStream",
            "dynamodb:GetRecords",
            "dynamodb:GetShardIterator",
            "sqs:GetQueueAttributes",
            "sqs:GetQueueUrl",
        },
        stack.webhooks.deliverer.role: {
            "dynamodb:GetItem",
            "dynamodb:UpdateItem",
            "sqs:SendMessage",
            "s3:GetObject",
            # the SQS event source
            "sqs:ReceiveMessage",
            "sqs:ChangeMessageVisibility",
            "sqs:GetQueueUrl",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
        },
        stack.ws_routes.role: {
            # subscribe and unsubscribe: one item each, never a read of the connections table
            "dynamodb:PutItem",
            "dynamodb:DeleteItem",
            # the job event log, for subscribe with `after`
            "dynamodb:Query",
            "dynamodb:GetItem",
            "s3:GetObject",
            "execute-api:ManageConnections",
        },
        stack.runners.task_definition.task_role: {
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:ChangeMessageVisibility",
            "dynamodb:GetItem",
            "dynamodb:UpdateItem",
            # a job's subscribers, and a gone one's subscription (no index)
            "dynamodb:Query",
            "dynamodb:DeleteItem",
            # the job event log (gpu_runner/events.py)
            "dynamodb:PutItem",
            "s3:PutObject",
            "s3:DeleteObject",
            "s3:GetObject",
            "s3:ListBucket",
            "execute-api:ManageConnections",
            # scale-in protection while a job is in hand
            "ecs:UpdateTaskProtection",
            "ecs:GetTaskProtection",
        },
    }
    for role, actions in expected.items():
        assert _actions_of(synth, role) - _LOGS_AND_TRACES == actions, role.node.path


def test_manage_connections_goes_to_exactly_the_processes_that_post(synth: Synth) -> None:
    stack = synth.stack
    holders = {
        role["Ref"]
        for _, props, statement in _allow_statements(synth)
        if "execute-api:ManageConnections" in _listed(statement["Action"])
        for role in props.get("Roles", [])
    }
    expected = {
        synth.logical_id(stack.api_function.role),
        synth.logical_id(stack.ws_routes.role),
        synth.logical_id(stack.dlq_function.role),
        synth.logical_id(stack.runners.task_definition.task_role),
    }
    assert holders == expected


def test_queries_name_their_index_rather_than_every_index(synth: Synth) -> None:
    for logical_id, _, statement in _allow_statements(synth):
        assert "/index/*" not in json.dumps(statement.get("Resource")), logical_id


def _statements_naming(synth: Synth, role_construct: Any, action: str) -> list[dict[str, Any]]:
    role_id = synth.logical_id(role_construct)
    return [
        statement
        for _, props, statement in _allow_statements(synth)
        if {"Ref": role_id} in props.get("Roles", []) and action in _listed(statement["Action"])
    ]


def test_the_file_input_catalog_is_read_by_the_api_and_written_by_the_runners_and_nothing_more(
    synth: Synth,
) -> None:
    stack = synth.stack
    for role, actions in (
        (stack.api_function.role, {"s3:GetObject"}),
        (stack.runners.task_definition.task_role, {"s3:GetObject", "s3:PutObject"}),
    ):
        on_catalog = [
            s for s in _statements_naming(synth, role, "s3:GetObject") if COMFYUI_CATALOG_KEY in json.dumps(s)
        ]
        assert len(on_catalog) == 1 and set(_listed(on_catalog[0]["Action"])) == actions
        # Beside the unconditioned ListBucket that makes any missing upload a 404 for these two roles.
        [listing] = [
            s
            for s in _statements_naming(synth, role, "s3:ListBucket")
            if "Condition" in s and COMFYUI_CATALOG_KEY in json.dumps(s)
        ]
        assert listing["Condition"] == {"StringEquals": {"s3:prefix": COMFYUI_CATALOG_KEY}}
        assert "Fn::GetAtt" in json.dumps(listing["Resource"])  # the bucket itself, not its objects


def test_only_the_api_function_reads_the_tenants_table_and_only_by_key(synth: Synth) -> None:
    tenants = synth.logical_id(synth.stack.data.tenants_table)
    readers = {
        (role["Ref"], action)
        for _, props, statement in _allow_statements(synth)
        if tenants in json.dumps(statement.get("Resource"))
        for action in _listed(statement["Action"])
        for role in props.get("Roles", [])
    }
    assert readers == {(synth.logical_id(synth.stack.api_function.role), "dynamodb:GetItem")}


def test_the_runner_appends_to_the_job_event_log_and_only_late_readers_query_it(synth: Synth) -> None:
    events = synth.logical_id(synth.stack.data.job_events_table)
    users = {
        (role["Ref"], action)
        for _, props, statement in _allow_statements(synth)
        if events in json.dumps(statement.get("Resource"))
        for action in _listed(statement["Action"])
        for role in props.get("Roles", [])
    }
    stack = synth.stack
    assert users == {
        (synth.logical_id(stack.runners.task_definition.task_role), "dynamodb:PutItem"),
        (synth.logical_id(stack.api_function.role), "dynamodb:Query"),
        (synth.logical_id(stack.ws_routes.role), "dynamodb:Query"),
    }


def test_the_model_library_is_only_read_and_only_under_its_prefix(synth: Synth) -> None:
    stack = synth.stack
    prefix = stack.models.prefix
    for role in (stack.api_function.role, stack.runners.task_definition.task_role):
        role_statements = [
            statement
            for _, props, statement in _allow_statements(synth)
            if {"Ref": synth.logical_id(role)} in props.get("Roles", [])
        ]
        on_models = [
            s for s in role_statements if f"/{prefix}" in json.dumps(s) or prefix in str(s.get("Condition"))
        ]
        actions = {action for statement in on_models for action in _listed(statement["Action"])}
        assert actions == {"s3:GetObject", "s3:ListBucket"}
        [listing] = [s for s in on_models if "s3:ListBucket" in _listed(s["Action"])]
        assert listing["Condition"] == {"StringLike": {"s3:prefix": f"{prefix}*"}}
        [reading] = [s for s in on_models if "s3:GetObject" in _listed(s["Action"])]
        assert f'"/{prefix}*"' in json.dumps(reading["Resource"])
