"""Tables, queues and buckets: keys and names from shared.names, durability and encryption on."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match

from infra.config import ServiceConfig
from shared.names import (
    ALL_TABLES,
    CONNECTIONS_TABLE,
    JOB_EVENTS_TABLE,
    JOBS_BY_OWNER_INDEX,
    JOBS_TABLE,
    TENANTS_TABLE,
    WEBHOOKS_TABLE,
    ConnectionAttr,
    S3Prefix,
    TableSpec,
)
from shared.settings import RunnerSettings
from tests.infra.conftest import APP_ORIGIN, Synth

pytestmark = pytest.mark.infra


def _table_id(synth: Synth, spec: TableSpec) -> str:
    data = synth.stack.data
    construct = {
        JOBS_TABLE: data.jobs_table,
        CONNECTIONS_TABLE: data.connections_table,
        TENANTS_TABLE: data.tenants_table,
        JOB_EVENTS_TABLE: data.job_events_table,
        WEBHOOKS_TABLE: data.webhooks_table,
    }[spec]
    return synth.logical_id(construct)


def _table(synth: Synth, spec: TableSpec) -> dict:
    return synth.resources("AWS::DynamoDB::Table")[_table_id(synth, spec)]


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
        # Each index holds what its queries read, and nothing a job update would rewrite for nothing.
        projection: dict[str, object] = {"ProjectionType": index.projection_type}
        if index.projection_type == "INCLUDE":
            projection["NonKeyAttributes"] = list(index.projection or ())
        assert indexes[index.name]["Projection"] == projection
    if spec.ttl_attribute:
        assert table["TimeToLiveSpecification"] == {"AttributeName": spec.ttl_attribute, "Enabled": True}
    else:  # tenants and their keys are kept until the platform team removes them
        assert "TimeToLiveSpecification" not in table


@pytest.mark.parametrize("spec", ALL_TABLES, ids=lambda spec: spec.default_name)
def test_each_table_is_on_demand_recoverable_encrypted_and_kept(synth: Synth, spec: TableSpec) -> None:
    table = _table(synth, spec)
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["SSESpecification"]["SSEEnabled"] is True
    resource = synth.json["Resources"][_table_id(synth, spec)]
    # Kept on stack deletion and replacement, removed only when its own creation rolls back.
    assert resource["DeletionPolicy"] == "RetainExceptOnCreate"
    assert resource["UpdateReplacePolicy"] == "Retain"


def test_no_table_queue_or_bucket_has_a_fixed_name_that_a_failed_deploy_would_leave_taken(
    synth: Synth,
) -> None:
    # A retained table or bucket of a failed or deleted stack keeps its name; CloudFormation's own names
    # (stack name and a suffix) never collide with it, and every process gets the names in its environment.
    named = {
        "AWS::DynamoDB::Table": "TableName",
        "AWS::SQS::Queue": "QueueName",
        "AWS::S3::Bucket": "BucketName",
    }
    for resource_type, name_property in named.items():
        resources = synth.resources(resource_type)
        assert resources
        assert all(name_property not in properties for properties in resources.values()), resource_type
    # Deletion protection would stop a rolled-back creation from removing the table: off unless asked for.
    assert all(
        "DeletionProtectionEnabled" not in t or t["DeletionProtectionEnabled"] is False
        for t in synth.resources("AWS::DynamoDB::Table").values()
    )


def test_the_data_buckets_are_kept_except_when_their_creation_rolls_back(synth: Synth) -> None:
    for bucket in (synth.stack.data.bucket, synth.stack.data.log_bucket):
        resource = synth.json["Resources"][synth.logical_id(bucket)]
        assert resource["DeletionPolicy"] == "RetainExceptOnCreate"
        assert resource["UpdateReplacePolicy"] == "Retain"


def test_the_jobs_queue_redrives_to_the_dlq_after_max_receive_count(synth: Synth) -> None:
    defaults = ServiceConfig()
    synth.template.has_resource_properties(
        "AWS::SQS::Queue",
        {
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
        {"SqsManagedSseEnabled": True, "MessageRetentionPeriod": 14 * 24 * 3600},
    )


def test_every_queue_refuses_plain_http(synth: Synth) -> None:
    policies = synth.resources("AWS::SQS::QueuePolicy")
    assert len(policies) == 4  # the jobs queue and its DLQ, the webhook attempts queue and its DLQ
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


def _api_origin(synth: Synth) -> dict:
    rest_api_id = {"Ref": synth.logical_id(synth.stack.rest.api)}
    return {
        "Fn::Join": [
            "",
            [
                "https://",
                rest_api_id,
                ".execute-api.",
                {"Ref": "AWS::Region"},
                ".",
                {"Ref": "AWS::URLSuffix"},
            ],
        ]
    }


def test_browsers_may_use_presigned_urls_from_the_apis_own_origins_and_the_configured_ones(
    synth: Synth,
) -> None:
    _, bucket = _artifacts_bucket(synth)
    # The first rule is the configured one; the console's own origin has a rule of its own (test_console).
    rule = bucket["CorsConfiguration"]["CorsRules"][0]
    assert {"POST", "GET"} <= set(rule["AllowedMethods"])
    custom_domain = "https://" + synth.stack.config.custom_domain_name  # type: ignore[operator]
    assert rule["AllowedOrigins"] == [_api_origin(synth), custom_domain, APP_ORIGIN]


def test_by_default_only_the_apis_own_origin_is_allowed_never_any_origin(optional_synth: Synth) -> None:
    assert ServiceConfig().cors_allowed_origins == ()
    _, bucket = _artifacts_bucket(optional_synth)
    rules = bucket["CorsConfiguration"]["CorsRules"]
    assert rules[0]["AllowedOrigins"] == [_api_origin(optional_synth)]
    assert all("*" not in rule["AllowedOrigins"] for rule in rules)


def test_the_indexes_written_on_every_job_update_hold_keys_only() -> None:
    """An index projecting the job's changing attributes would be written on every job update."""
    jobs = {index.name: index for index in JOBS_TABLE.indexes}
    assert jobs[JOBS_BY_OWNER_INDEX].projection_type == "KEYS_ONLY"


def test_subscriptions_are_keyed_by_job_so_the_fan_out_needs_no_index() -> None:
    """The fan-out reads a job's subscribers from its partition: a subscription is one write, no index."""
    assert (CONNECTIONS_TABLE.partition_key, CONNECTIONS_TABLE.sort_key) == (
        ConnectionAttr.JOB,
        ConnectionAttr.CONNECTION_ID,
    )
    assert CONNECTIONS_TABLE.indexes == ()
    # Subscriptions expire: nothing deletes them when a socket closes.
    assert CONNECTIONS_TABLE.ttl_attribute == ConnectionAttr.EXPIRES_AT
