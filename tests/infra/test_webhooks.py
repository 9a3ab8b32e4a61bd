"""The webhook path's infrastructure: the stream mapping's filter and failure handling, and grants that
name exactly the webhook resources."""

from __future__ import annotations

import json
from typing import Any

from infra.webhooks import transition_filters
from tests.infra.conftest import Synth


def _resources(synth: Synth, kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in synth.json["Resources"].items() if v["Type"] == kind}


def test_only_status_transitions_of_the_jobs_table_invoke_the_dispatcher_and_failures_are_kept(
    synth: Synth,
) -> None:
    jobs_table = synth.logical_id(synth.stack.data.jobs_table)
    (mapping,) = [
        m["Properties"]
        for m in _resources(synth, "AWS::Lambda::EventSourceMapping").values()
        if "StartingPosition" in m["Properties"]
    ]
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": [jobs_table, "StreamArn"]}
    assert [json.loads(f["Pattern"]) for f in mapping["FilterCriteria"]["Filters"]] == transition_filters()
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    dlq = synth.logical_id(synth.stack.webhooks.dead_letter_queue)
    assert mapping["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": [dlq, "Arn"]}
    table = _resources(synth, "AWS::DynamoDB::Table")[jobs_table]["Properties"]
    assert table["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}


def _grants(synth: Synth, role: Any, action: str) -> list[Any]:
    role_id = synth.logical_id(role)
    found = []
    for policy in _resources(synth, "AWS::IAM::Policy").values():
        if {"Ref": role_id} not in policy["Properties"]["Roles"]:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if action in actions:
                found += (
                    statement["Resource"]
                    if isinstance(statement["Resource"], list)
                    else [statement["Resource"]]
                )
    return found


def test_each_webhook_function_reaches_exactly_its_own_resources(synth: Synth) -> None:
    webhooks = synth.stack.webhooks
    bus = synth.logical_id(webhooks.bus)
    queue, dlq = synth.logical_id(webhooks.queue), synth.logical_id(webhooks.dead_letter_queue)
    table = synth.logical_id(synth.stack.data.webhooks_table)
    assert _grants(synth, webhooks.dispatcher.role, "events:PutEvents") == [{"Fn::GetAtt": [bus, "Arn"]}]
    assert _grants(synth, webhooks.dispatcher.role, "dynamodb:Query") == [{"Fn::GetAtt": [table, "Arn"]}]
    # The dispatcher queues first attempts; only the deliverer dead-letters (and the mapping, on failure).
    assert {"Fn::GetAtt": [queue, "Arn"]} in _grants(synth, webhooks.dispatcher.role, "sqs:SendMessage")
    assert sorted(map(str, _grants(synth, webhooks.deliverer.role, "sqs:SendMessage"))) == sorted(
        map(str, [{"Fn::GetAtt": [queue, "Arn"]}, {"Fn::GetAtt": [dlq, "Arn"]}])
    )
    assert _grants(synth, webhooks.deliverer.role, "dynamodb:UpdateItem") == [{"Fn::GetAtt": [table, "Arn"]}]
    assert _grants(synth, synth.stack.api_function.role, "events:PutEvents") == []
