"""Tables, queues and buckets: keys and names from shared.names, durability and encryption on."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match

from infra.config import ServiceConfig
from shared.names import ALL_TABLES, JOBS_DLQ_NAME, JOBS_QUEUE_NAME, S3Prefix, TableSpec
from shared.settings import RunnerSettings
from tests.infra.conftest import Synth

pytestmark = pytest.mark.infra


def _table(synth: Synth, spec: TableSpec) -> dict:
    tables = [
        p for p in synth.resources("AWS::DynamoDB::Table").values() if p["TableName"] == spec.default_name
    ]
    assert len(tables) == 1, f"one table named {spec.default_name}"
    return tables[0]


def _key_schema(partition_key: str, sort_key: str | None) -> list[dict[str, str]]:
    schema = [{"AttributeName": partition_key, "KeyType": "HASH"}]
    if sort_key:
        schema.append({"AttributeName": sort_key, "KeyType": "RANGE"})
    return schema


@pytest.mark.parametrize("spec", ALL_TABLES, ids=lambda spec: spec.default_name)
def test_each_table_has_the_keys_indexes_and_ttl_of_its_spec(synth: Synth, spec: TableSpec) -> None:
    table = _table(synth, spec)
    assert table["KeySchema"] == _key_schema(spec.partition_key, spec.sort_key)
    assert sorted((a["AttributeName"], a["AttributeType"]) for a in table["AttributeDefinitions"]) == sorted(
        spec.key_types
    )
    indexes = {index["IndexName"]: index for index in table.get("GlobalSecondaryIndexes", [])}
    assert set(indexes) == {index.name for index in spec.indexes}
    for index in spec.indexes:
        assert indexes[index.name]["KeySchema"] == _key_schema(index.partition_key, index.sort_key)
        assert indexes[index.name]["Projection"] == {"ProjectionType": "ALL"}
    assert table["TimeToLiveSpecification"] == {"AttributeName": spec.ttl_attribute, "Enabled": True}


@pytest.mark.parametrize("spec", ALL_TABLES, ids=lambda spec: spec.default_name)
def test_each_table_is_on_demand_recoverable_encrypted_and_kept(synth: Synth, spec: TableSpec) -> None:
    table = _table(synth, spec)
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["SSESpecification"]["SSEEnabled"] is True
    assert table["DeletionProtectionEnabled"] is True
    synth.template.has_resource(
        "AWS::DynamoDB::Table",
        {
            "Properties": {"TableName": spec.default_name},
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
        },
    )


def test_the_jobs_queue_redrives_to_the_dlq_after_max_receive_count(synth: Synth) -> None:
    defaults = ServiceConfig()
    synth.template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "QueueName": JOBS_QUEUE_NAME,
            "VisibilityTimeout": RunnerSettings.model_fields["visibility_timeout_seconds"].default,
            "ReceiveMessageWaitTimeSeconds": 20,
            "SqsManagedSseEnabled": True,
            "RedrivePolicy": {
                "deadLetterTargetArn": Match.any_value(),
                "maxReceiveCount": defaults.max_receive_count,
            },
        },
    )
    synth.template.has_resource_properties(
        "AWS::SQS::Queue",
        {"QueueName": JOBS_DLQ_NAME, "SqsManagedSseEnabled": True, "MessageRetentionPeriod": 14 * 24 * 3600},
    )


def test_every_queue_refuses_plain_http(synth: Synth) -> None:
    policies = synth.resources("AWS::SQS::QueuePolicy")
    assert len(policies) == 2
    for policy in policies.values():
        assert _denies_insecure_transport(policy["PolicyDocument"])


def _denies_insecure_transport(document: dict) -> bool:
    return any(
        statement["Effect"] == "Deny"
        and statement.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
        for statement in document["Statement"]
    )


def _artifacts_bucket(synth: Synth) -> tuple[str, dict]:
    logical_id = synth.logical_id(synth.stack.data.bucket)
    return logical_id, synth.resources("AWS::S3::Bucket")[logical_id]


def test_buckets_are_private_encrypted_and_tls_only(synth: Synth) -> None:
    buckets = synth.resources("AWS::S3::Bucket")
    assert len(buckets) == 3  # artifacts, access logs, the console's files
    for bucket in buckets.values():
        assert bucket["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        rule = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    policies = synth.resources("AWS::S3::BucketPolicy").values()
    assert len(policies) == 3
    assert all(_denies_insecure_transport(policy["PolicyDocument"]) for policy in policies)


def test_the_artifacts_bucket_expires_each_prefix_and_logs_access(synth: Synth) -> None:
    defaults = ServiceConfig()
    _, bucket = _artifacts_bucket(synth)
    rules = {rule["Id"]: rule for rule in bucket["LifecycleConfiguration"]["Rules"]}
    expected = {
        S3Prefix.OUTPUTS: defaults.output_retention_days,
        S3Prefix.INPUTS: defaults.input_retention_days,
        S3Prefix.WORKFLOWS: defaults.workflow_retention_days,
    }
    for prefix, days in expected.items():
        rule = rules[f"expire-{prefix}"]
        assert rule["Prefix"] == f"{prefix}/"
        assert rule["ExpirationInDays"] == days
        assert rule["Status"] == "Enabled"
    assert rules["abort-incomplete-uploads"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert bucket["LoggingConfiguration"]["DestinationBucketName"] == {
        "Ref": synth.logical_id(synth.stack.data.log_bucket)
    }


def test_the_artifacts_bucket_allows_presigned_put_and_get_from_browsers(synth: Synth) -> None:
    _, bucket = _artifacts_bucket(synth)
    # The first rule is the configured one; the console's own origin has a rule of its own (test_console).
    rule = bucket["CorsConfiguration"]["CorsRules"][0]
    assert {"PUT", "GET"} <= set(rule["AllowedMethods"])
    assert rule["AllowedOrigins"] == list(ServiceConfig().cors_allowed_origins)
