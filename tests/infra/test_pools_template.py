"""The template with a declared Spot pool (the e2e pools stack's, one synthesis for both): its own queues,
capacity, task and scaling, and each role's grants on exactly its queues."""

from __future__ import annotations

import json
from typing import Any

import pytest

from local.iam.template import synthesized_template
from tests.pools_example import synth_context_of_example

pytestmark = pytest.mark.timeout(400)


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    return dict(synthesized_template(context=synth_context_of_example())["Resources"])


def _of_type(resources: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v.get("Properties", {}) for k, v in resources.items() if v["Type"] == kind}


def _spot(logical_ids: dict[str, Any]) -> str:
    [found] = [k for k in logical_ids if k.startswith("PoolSpot")]
    return found


def _statements(resources: dict[str, Any], role_id: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in _of_type(resources, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Roles"]
        for statement in policy["PolicyDocument"]["Statement"]
    ]


def _queue_ids(statement: dict[str, Any]) -> set[str]:
    found = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
    return {r["Fn::GetAtt"][0] for r in found if isinstance(r, dict) and "Fn::GetAtt" in r}


def _actions(statement: dict[str, Any]) -> set[str]:
    action = statement["Action"]
    return set(action if isinstance(action, list) else [action])


def test_the_spot_pool_has_its_own_queue_dlq_spot_capacity_and_scaling(resources: dict[str, Any]) -> None:
    queues = _of_type(resources, "AWS::SQS::Queue")
    tagged = {
        (t["comfy:pool"], t["comfy:lane"]): k
        for k, props in queues.items()
        for t in [{tag["Key"]: tag["Value"] for tag in props.get("Tags", [])}]
        if "comfy:pool" in t
    }
    assert set(tagged) == {("spot", "standard"), ("spot", "dlq")}
    redrive = queues[tagged[("spot", "standard")]]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": [tagged[("spot", "dlq")], "Arn"]}
    [spot_group] = [
        p
        for k, p in _of_type(resources, "AWS::AutoScaling::AutoScalingGroup").items()
        if k.startswith("PoolSpot")
    ]
    distribution = spot_group["MixedInstancesPolicy"]["InstancesDistribution"]
    assert distribution["OnDemandPercentageAboveBaseCapacity"] == 0
    assert distribution["SpotAllocationStrategy"] == "price-capacity-optimized"
    targets = _of_type(resources, "AWS::ApplicationAutoScaling::ScalableTarget")
    spot_target = targets[_spot(targets)]
    assert (spot_target["MinCapacity"], spot_target["MaxCapacity"]) == (2, 4)
    # It scales on its own backlog: the metric names its own queue.
    policies = _of_type(resources, "AWS::ApplicationAutoScaling::ScalingPolicy")
    spot_policy = json.dumps(policies[_spot({k: v for k, v in policies.items() if "Backlog" in k})])
    assert tagged[("spot", "standard")] in spot_policy and "DataJobsQueue" not in spot_policy
    # Both pools' dead letters end their jobs.
    mappings = _of_type(resources, "AWS::Lambda::EventSourceMapping").values()
    sources = {m["EventSourceArn"]["Fn::GetAtt"][0] for m in mappings}
    # (The webhook functions' stream and attempts queue are sources too, of other functions.)
    dead_letter_sources = {source for source in sources if "DeadLetterQueue" in source}
    assert tagged[("spot", "dlq")] in dead_letter_sources and len(dead_letter_sources) == 2
    # And an operator hears of them, as of the default pool's.
    alarms = json.dumps(_of_type(resources, "AWS::CloudWatch::Alarm"))
    assert tagged[("spot", "dlq")] in alarms and tagged[("spot", "standard")] in alarms


def test_spot_runners_hear_the_notice_and_may_send_only_to_their_own_queue(resources: dict[str, Any]) -> None:
    tasks = _of_type(resources, "AWS::ECS::TaskDefinition")
    spot_task = tasks[_spot(tasks)]
    [runner] = [c for c in spot_task["ContainerDefinitions"] if c["Name"] == "runner"]
    env = {v["Name"]: v["Value"] for v in runner["Environment"]}
    assert env["POOL_NAME"] == "spot" and env["RELEASE_ON_SIGTERM"] == "true"
    assert env["SPOT_METADATA_URL"] == "http://169.254.169.254"
    role_id = spot_task["TaskRoleArn"]["Fn::GetAtt"][0]
    sends = [s for s in _statements(resources, role_id) if "sqs:SendMessage" in _actions(s)]
    queues = _of_type(resources, "AWS::SQS::Queue")
    [spot_queue] = [k for k in queues if k.startswith("PoolsSpotQueue")]
    assert [_queue_ids(s) for s in sends] == [{spot_queue}]
    # The default pool's runners, on demand, never send.
    default_task = next(p for k, p in tasks.items() if k.startswith("RunnersTask"))
    default_role = default_task["TaskRoleArn"]["Fn::GetAtt"][0]
    assert not [s for s in _statements(resources, default_role) if "sqs:SendMessage" in _actions(s)]
