"""The cost model: DynamoDB units worked out from moto's items, and dollars from counted units."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from bench.capacity import Capacity
from bench.cost_model import Deployment, aws_units, dollars_per_million, gateway_units
from bench.counters import Call
from bench.gateway_meter import Invocation

ACCOUNT, REGION = "123456789012", "us-east-1"


@pytest.fixture
def db() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        key_schema = [{"AttributeName": "owner", "KeyType": "HASH"}]
        client.create_table(
            TableName="jobs",
            KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"}],
            AttributeDefinitions=[
                {"AttributeName": "job_id", "AttributeType": "S"},
                {"AttributeName": "owner", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
            GlobalSecondaryIndexes=[
                {"IndexName": "keys", "KeySchema": key_schema, "Projection": {"ProjectionType": "KEYS_ONLY"}},
                {"IndexName": "all", "KeySchema": key_schema, "Projection": {"ProjectionType": "ALL"}},
            ],
        )
        yield client


def _write(db: Any, capacity: Capacity, operation: str, body: dict[str, Any]) -> Any:
    snapshot = capacity.before_write(operation, body)
    method = {
        "PutItem": db.put_item,
        "UpdateItem": db.update_item,
        "TransactWriteItems": db.transact_write_items,
    }
    method[operation](**body)
    return capacity.after_write(snapshot)


def test_a_write_is_billed_by_kb_on_the_table_and_on_each_index_it_changes(db: Any) -> None:
    capacity = Capacity(ACCOUNT, REGION)
    item = {"job_id": {"S": "j1"}, "owner": {"S": "o"}, "workflow": {"S": "x" * 1500}}
    created = _write(db, capacity, "PutItem", {"TableName": "jobs", "Item": item})
    # 1.5 KB: 2 units on the table and on the ALL index, 1 on the keys-only one.
    assert (created.write_units, created.index_write_units) == (2, 3)
    update = {
        "TableName": "jobs",
        "Key": {"job_id": {"S": "j1"}},
        "UpdateExpression": "SET progress = :p",
        "ExpressionAttributeValues": {":p": {"N": "50"}},
    }
    updated = _write(db, capacity, "UpdateItem", update)
    # The keys-only index does not change: only the ALL index is written again.
    assert (updated.write_units, updated.index_write_units) == (2, 2)


def test_a_transaction_costs_twice_on_its_tables(db: Any) -> None:
    capacity = Capacity(ACCOUNT, REGION)
    puts = [{"Put": {"TableName": "jobs", "Item": {"job_id": {"S": f"j{i}"}}}} for i in range(2)]
    units = _write(db, capacity, "TransactWriteItems", {"TransactItems": puts})
    # Two small items outside the indexes (no owner): 2 units each.
    assert (units.write_units, units.index_write_units) == (4, 0)


def test_reads_are_billed_by_4_kb_and_half_when_eventually_consistent(db: Any) -> None:
    capacity = Capacity(ACCOUNT, REGION)
    db.put_item(TableName="jobs", Item={"job_id": {"S": "j1"}, "blob": {"S": "y" * 5000}})
    key = {"TableName": "jobs", "Key": {"job_id": {"S": "j1"}}}
    assert capacity.reads("GetItem", {**key, "ConsistentRead": True}, {}).read_units == 2
    assert capacity.reads("GetItem", key, {}).read_units == 1
    assert (
        capacity.reads("GetItem", {"TableName": "jobs", "Key": {"job_id": {"S": "none"}}}, {}).read_units
        == 0.5
    )


def test_dollars_come_from_the_counted_units_and_the_price_table() -> None:
    calls = [
        Call("api", "sqs", "SendMessage", "queue q", payload_bytes=100),
        Call("api", "sqs", "SendMessage", "queue q", payload_bytes=70 * 1024),  # two 64 KB chunks
        Call("runner", "s3", "PutObject", "bucket"),
        Call("runner", "s3", "DeleteObject", "bucket"),  # free
        Call("events", "events", "PutEvents", "", entries=3),
    ]
    units = aws_units(calls)
    assert (units["sqs_requests"], units["s3_put_requests"], units["eventbridge_events"]) == (3, 1, 3)
    deployment = Deployment(
        {"api": 1024}, 256, rest_trace_rate=0.1, lambdas_traced=False, lambda_platform_logs=False
    )
    gateway = gateway_units(
        [Invocation("api", 1024, 99.2), Invocation("ws-subscribe", 1024, 9.5)],
        rest_requests=1,
        messages_in=[40],
        posts_out=[100, 40 * 1024],  # the second is two 32 KB units
        connection_seconds=[12.0],
        deployment=deployment,
    )
    assert gateway["ws_messages"] == 4 and gateway["ws_connection_minutes"] == 1
    assert gateway["lambda_gb_seconds"] == pytest.approx(0.1 * 1 + 0.01 * 0.25)
    assert gateway["xray_traces"] == pytest.approx(0.1)
    cost = dollars_per_million({**units, **gateway})
    assert cost["rest_requests"] == pytest.approx(3.50)
    assert cost["ws_messages"] == pytest.approx(4.0)
    assert cost["s3_put_requests"] == pytest.approx(5.0)
    assert cost["total"] == pytest.approx(sum(v for k, v in cost.items() if k != "total"))


def test_the_cost_run_gives_the_runner_the_settings_the_template_deploys_it_with() -> None:
    from bench.deployed import deployed_runner_env

    env = [
        {"Name": "VISIBILITY_TIMEOUT_SECONDS", "Value": "120"},
        {"Name": "LOG_LEVEL", "Value": "INFO"},
        # Places in AWS are the local stack's own; references are not settings.
        {"Name": "COMFYUI_URL", "Value": "http://localhost:8188"},
        {"Name": "MODEL_CACHE_DIR", "Value": "/models-cache"},
        {"Name": "JOBS_TABLE_NAME", "Value": {"Ref": "JobsTable"}},
    ]
    template = {
        "Resources": {
            "Task": {
                "Type": "AWS::ECS::TaskDefinition",
                "Properties": {
                    "ContainerDefinitions": [
                        {"Name": "comfyui", "Environment": [{"Name": "X", "Value": "1"}]},
                        {"Name": "runner", "Environment": env},
                    ]
                },
            }
        }
    }
    assert deployed_runner_env(template) == {"VISIBILITY_TIMEOUT_SECONDS": "120", "LOG_LEVEL": "INFO"}
    with pytest.raises(ValueError, match="runner container"):
        deployed_runner_env({"Resources": {}})


def test_functions_an_event_source_invokes_are_counted_like_those_api_gateway_invokes() -> None:
    """The webhook dispatcher the jobs table's stream feeds is billed per invocation and GB-second."""
    from bench.gateway_meter import GatewayMeter

    meter = GatewayMeter()
    dispatch = meter.timed("webhook_dispatch", lambda event, context: {"batchItemFailures": []})
    assert dispatch({"Records": []}, None) == {"batchItemFailures": []}
    failing = meter.timed("webhook_dispatch", lambda event, context: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        failing({"Records": []}, None)
    assert [i.function for i in meter.invocations] == ["webhook_dispatch", "webhook_dispatch"]
    deployment = Deployment({"api": 1024}, 256, 0.05, False, False)
    units = gateway_units(meter.invocations, 0, [], [], [], deployment)
    assert units["lambda_requests"] == 2 and units["lambda_gb_seconds"] > 0
    assert units["access_log_bytes"] == 0, "no API Gateway route ran"


def test_access_log_lines_are_billed_at_the_size_each_stages_format_writes() -> None:
    from bench.access_log import line_bytes, stage_formats

    rest = '{"requestId":"$context.requestId","path":"$context.path","error":"$context.error.message"}'
    websocket = '{"requestId": "$context.requestId", "route": "$context.routeKey"}'
    template = {
        "Resources": {
            "Rest": {"Type": "AWS::ApiGateway::Stage", "Properties": {"AccessLogSetting": {"Format": rest}}},
            "Ws": {
                "Type": "AWS::ApiGatewayV2::Stage",
                "Properties": {"AccessLogSettings": {"Format": websocket}},
            },
        }
    }
    formats = stage_formats(template)
    assert formats == {"rest": rest, "websocket": websocket}
    # A value API Gateway does not have (no error) is written "-".
    expected = '{"requestId":"c6af9ac6-7b61-11e6-9a41-93e8deadbeef","path":"/prod/v1/jobs/'
    assert line_bytes(rest) == len(expected) + 32 + len('","error":"-"}')
    sizes = {api: line_bytes(f) for api, f in formats.items()}
    deployment = Deployment({"api": 1024}, 256, 0.05, False, False, sizes)
    subscribe = Invocation("ws-subscribe", 256, 10.0)
    units = gateway_units([subscribe], 2, [], [], [], deployment)
    assert units["access_log_bytes"] == 2 * sizes["rest"] + sizes["websocket"]
    assert Deployment.from_dict(deployment.as_dict()) == deployment


def test_the_cost_run_gives_the_api_function_the_settings_the_template_deploys_it_with() -> None:
    from bench.deployed import deployed_function_env

    api = {
        "Handler": "functions.api.handler.handler",
        "Environment": {"Variables": {"PREFER_WAIT_MAX_SECONDS": "5", "JOBS_TABLE_NAME": {"Ref": "Jobs"}}},
    }
    template = {"Resources": {"Api": {"Type": "AWS::Lambda::Function", "Properties": api}}}
    assert deployed_function_env("functions.api.handler.handler", template) == {
        "PREFER_WAIT_MAX_SECONDS": "5"
    }
    with pytest.raises(ValueError, match="no function"):
        deployed_function_env("functions.ws.handler.handler", template)
