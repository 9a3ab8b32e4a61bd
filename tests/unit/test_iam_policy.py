"""The local stack's IAM evaluation: resources, conditions and Deny, as IAM decides them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from local.iam.calls import Arns, HttpRequest, dynamodb_calls, s3_calls, sqs_calls
from local.iam.policy import Principal, statements_of
from local.iam.template import LocalAccount, Resolver

ARNS = Arns("123456789012", "us-east-1")
JOBS = ARNS.table("comfy-jobs")
TENANTS = ARNS.table("comfy-tenants")


def principal(*statements: dict[str, Any]) -> Principal:
    return Principal(
        "p", "arn:aws:sts::123456789012:assumed-role/R/p", statements_of([{"Statement": list(statements)}])
    )


def allow(actions: str | list[str], resources: str | list[str], **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resources, **extra}


def test_a_grant_holds_for_its_resource_only() -> None:
    p = principal(allow(["dynamodb:GetItem", "dynamodb:UpdateItem"], JOBS))
    assert p.allows("dynamodb:GetItem", JOBS)
    assert p.allows("DynamoDB:getitem", JOBS), "actions are case-insensitive"
    assert not p.allows("dynamodb:GetItem", TENANTS)
    assert not p.allows("dynamodb:PutItem", JOBS)
    assert not p.allows("dynamodb:Query", f"{JOBS}/index/by-owner")


def test_wildcards_in_resources_and_an_explicit_deny() -> None:
    p = principal(
        allow("s3:GetObject", "arn:aws:s3:::b/outputs/*"),
        {"Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::b/outputs/secret/*"},
    )
    assert p.allows("s3:GetObject", "arn:aws:s3:::b/outputs/o/j/1/a.png")
    assert not p.allows("s3:GetObject", "arn:aws:s3:::b/inputs/o/u")
    assert not p.allows("s3:GetObject", "arn:aws:s3:::b/outputs/secret/x")


def test_condition_keys_decide_a_listing() -> None:
    p = principal(
        allow("s3:ListBucket", "arn:aws:s3:::b", Condition={"StringLike": {"s3:prefix": ["outputs/*"]}})
    )
    assert p.allows("s3:ListBucket", "arn:aws:s3:::b", {"s3:prefix": "outputs/o/j/"})
    assert not p.allows("s3:ListBucket", "arn:aws:s3:::b", {"s3:prefix": "inputs/"})
    assert not p.allows("s3:ListBucket", "arn:aws:s3:::b"), "no prefix: the condition's key is absent"


def test_if_exists_and_negated_operators() -> None:
    p = principal(
        allow(
            "sqs:SendMessage",
            "*",
            Condition={"StringNotEqualsIfExists": {"aws:SourceVpc": ["vpc-1", "vpc-2"]}},
        )
    )
    assert p.allows("sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:q")
    assert p.allows("sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:q", {"aws:SourceVpc": "vpc-3"})
    assert not p.allows("sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:q", {"aws:SourceVpc": "vpc-2"})


def test_an_operator_not_emulated_is_an_error_not_an_allow() -> None:
    p = principal(allow("s3:GetObject", "*", Condition={"DateLessThan": {"aws:CurrentTime": "2030-01-01"}}))
    with pytest.raises(ValueError, match="DateLessThan"):
        p.allows("s3:GetObject", "arn:aws:s3:::b/k")


def request(method: str, path: str, body: Any = b"", target: str = "", **query: str) -> HttpRequest:
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    headers = {"x-amz-target": target} if target else {}
    return HttpRequest(method, path, {k.replace("_", "-"): [v] for k, v in query.items()}, headers, data)


def test_a_transaction_is_authorized_item_by_item_on_each_table() -> None:
    body = {
        "TransactItems": [
            {"Put": {"TableName": "comfy-jobs", "Item": {}}},
            {"Put": {"TableName": "comfy-tenants", "Item": {}}},
            {"ConditionCheck": {"TableName": "comfy-jobs", "Key": {}}},
        ]
    }
    calls = dynamodb_calls(request("POST", "/", body, "DynamoDB_20120810.TransactWriteItems"), ARNS)
    assert [(c.action, c.resource) for c in calls] == [
        ("dynamodb:PutItem", JOBS),
        ("dynamodb:PutItem", TENANTS),
        ("dynamodb:ConditionCheckItem", JOBS),
    ]


def test_a_query_on_an_index_names_the_index() -> None:
    body = {"TableName": "comfy-jobs", "IndexName": "by-owner"}
    (call,) = dynamodb_calls(request("POST", "/", body, "DynamoDB_20120810.Query"), ARNS)
    assert (call.action, call.resource) == ("dynamodb:Query", f"{JOBS}/index/by-owner")


def test_sqs_batches_are_authorized_as_the_action_they_repeat() -> None:
    body = {"QueueUrl": "http://127.0.0.1:5000/123456789012/comfy-jobs", "Entries": []}
    (call,) = sqs_calls(request("POST", "/", body, "AmazonSQS.DeleteMessageBatch"), ARNS)
    assert (call.action, call.resource) == (
        "sqs:DeleteMessage",
        "arn:aws:sqs:us-east-1:123456789012:comfy-jobs",
    )


def test_s3_requests_map_to_iam_actions() -> None:
    (head,) = s3_calls(request("HEAD", "/b/inputs/o/u"))
    assert (head.action, head.resource) == ("s3:GetObject", "arn:aws:s3:::b/inputs/o/u")
    (listing,) = s3_calls(request("GET", "/b", list_type="2", prefix="outputs/o/j/"))
    assert (listing.action, listing.resource, dict(listing.context)) == (
        "s3:ListBucket",
        "arn:aws:s3:::b",
        {"s3:prefix": "outputs/o/j/"},
    )
    (presigned,) = s3_calls(request("GET", "/b/outputs/k.png", X_Amz_Credential="AKIA/…"))
    assert presigned.action == "s3:GetObject"
    xml = b"<Delete><Object><Key>outputs/a</Key></Object><Object><Key>outputs/b</Key></Object></Delete>"
    deletes = s3_calls(request("POST", "/b", xml, delete=""))
    assert [(c.action, c.resource) for c in deletes] == [
        ("s3:DeleteObject", "arn:aws:s3:::b/outputs/a"),
        ("s3:DeleteObject", "arn:aws:s3:::b/outputs/b"),
    ]


def test_the_template_references_resolve_to_the_local_resources() -> None:
    template = {
        "Resources": {
            "Jobs": {"Type": "AWS::DynamoDB::Table", "Properties": {"TableName": "comfy-jobs"}},
            "Bucket": {
                "Type": "AWS::S3::Bucket",
                "Properties": {
                    "BucketName": {
                        "Fn::Join": [
                            "",
                            ["comfy-jobs-artifacts-", {"Ref": "AWS::AccountId"}, "-", {"Ref": "AWS::Region"}],
                        ]
                    }
                },
            },
            "Ws": {"Type": "AWS::ApiGatewayV2::Api", "Properties": {"ProtocolType": "WEBSOCKET"}},
        }
    }
    account = LocalAccount(
        "123456789012", "us-east-1", "local0wsap", lambda n: n.removesuffix("-123456789012-us-east-1")
    )
    resolve = Resolver(template, account).resolve
    assert (
        resolve({"Fn::Join": ["", [{"Fn::GetAtt": ["Jobs", "Arn"]}, "/index/by-owner"]]})
        == f"{JOBS}/index/by-owner"
    )
    assert resolve({"Fn::Join": ["", [{"Fn::GetAtt": ["Bucket", "Arn"]}, "/outputs/*"]]}) == (
        "arn:aws:s3:::comfy-jobs-artifacts/outputs/*"
    )
    assert resolve(
        {"Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${Ws}/prod/*"}
    ) == ("arn:aws:execute-api:us-east-1:123456789012:local0wsap/prod/*")
