"""What makes the stack deploy cleanly and run unattended: ordering, deployments, scale-in, cold start,
alarms, the API's concurrency, and the public domain."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.config import ServiceConfig
from infra.gpu_boot import PRE_PULL_HOOK_NAME, PRE_PULL_UNIT
from infra.observability import RUNNER_SHORTFALL_MINUTES
from shared.names import METRICS_NAMESPACE, GpuMetric, JobMetric
from shared.settings import ApiSettings
from tests.infra.conftest import CERTIFICATE_ARN, COMFYUI_IMAGE, CUSTOM_DOMAIN, OFFICE_HOURS, Synth

pytestmark = pytest.mark.infra


def _one(synth: Synth, resource_type: str) -> tuple[str, dict[str, Any]]:
    ((logical_id, properties),) = synth.resources(resource_type).items()
    return logical_id, properties


def _alarm(synth: Synth, construct_id: str) -> dict[str, Any]:
    alarm = synth.stack.observability.node.find_child(construct_id)
    return synth.resources("AWS::CloudWatch::Alarm")[synth.logical_id(alarm)]


def _metrics(alarm: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Id -> MetricStat.Metric of every metric a math alarm reads."""
    return {m["Id"]: m["MetricStat"]["Metric"] for m in alarm["Metrics"] if "MetricStat" in m}


def _expression(alarm: dict[str, Any]) -> str:
    (expression,) = [m["Expression"] for m in alarm["Metrics"] if "Expression" in m]
    return str(expression)


def _user_data(synth: Synth) -> str:
    _, template = _one(synth, "AWS::EC2::LaunchTemplate")
    return json.dumps(template["LaunchTemplateData"]["UserData"])


# -- deploy order and deployments ------------------------------------------------------------------


def test_the_runner_service_is_created_after_the_clusters_capacity_provider_association(
    synth: Synth,
) -> None:
    association_id, association = _one(synth, "AWS::ECS::ClusterCapacityProviderAssociations")
    (provider_id,) = synth.resources("AWS::ECS::CapacityProvider")
    assert association["CapacityProviders"] == [{"Ref": provider_id}]
    (service_id,) = synth.resources("AWS::ECS::Service")
    assert association_id in synth.json["Resources"][service_id]["DependsOn"]


def test_a_deployment_at_full_fleet_has_room_for_its_new_runners(synth: Synth) -> None:
    _, service = _one(synth, "AWS::ECS::Service")
    deployment = service["DeploymentConfiguration"]
    # Old runners stop only after new ones run, so a deployment at maxRunners needs MaximumPercent of
    # them at once, one GPU instance each: the group must be allowed that many.
    assert deployment["MinimumHealthyPercent"] == 100
    _, target = _one(synth, "AWS::ApplicationAutoScaling::ScalableTarget")
    _, group = _one(synth, "AWS::AutoScaling::AutoScalingGroup")
    assert int(group["MaxSize"]) >= target["MaxCapacity"] * deployment["MaximumPercent"] / 100
    assert deployment["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}


# -- scale-in never stops a runner mid-job -----------------------------------------------------------


def test_a_runner_may_protect_its_own_task_from_scale_in_and_nothing_else(synth: Synth) -> None:
    role_id = synth.logical_id(synth.stack.runners.task_definition.task_role)
    statements = [
        statement
        for policy in synth.resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Roles"]
        for statement in policy["PolicyDocument"]["Statement"]
    ]
    (protection,) = [s for s in statements if "ecs:UpdateTaskProtection" in s["Action"]]
    assert sorted(protection["Action"]) == ["ecs:GetTaskProtection", "ecs:UpdateTaskProtection"]
    resource = json.dumps(protection["Resource"])
    assert ":task/" in resource
    assert synth.logical_id(synth.stack.runners.cluster) in resource


def test_a_stopping_runner_has_the_whole_stop_timeout_to_finish_or_release_its_job(synth: Synth) -> None:
    (task,) = synth.resources("AWS::ECS::TaskDefinition").values()
    containers = {c["Name"]: c for c in task["ContainerDefinitions"]}
    config = ServiceConfig()
    assert containers["runner"]["StopTimeout"] == config.stop_timeout_seconds == 120
    environment = {e["Name"]: e["Value"] for e in containers["runner"]["Environment"]}
    # The runner releases what it could not finish before SIGKILL, with a margin to do it in.
    assert float(environment["STOP_TIMEOUT_SECONDS"]) == config.runner_stop_budget_seconds
    assert config.runner_stop_budget_seconds < config.stop_timeout_seconds


# -- cold start ------------------------------------------------------------------------------------


def test_instances_boot_the_amazon_linux_2023_gpu_ami(synth: Synth) -> None:
    _, template = _one(synth, "AWS::EC2::LaunchTemplate")
    parameter = synth.json["Parameters"][template["LaunchTemplateData"]["ImageId"]["Ref"]]
    assert parameter["Default"] == "/aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended/image_id"


def test_the_root_volume_has_the_throughput_to_pull_a_large_image(synth: Synth) -> None:
    config = ServiceConfig()
    _, template = _one(synth, "AWS::EC2::LaunchTemplate")
    (device,) = template["LaunchTemplateData"]["BlockDeviceMappings"]
    assert device["Ebs"]["VolumeType"] == "gp3"
    assert device["Ebs"]["Throughput"] == config.root_volume_throughput_mibps > 125
    assert device["Ebs"]["Iops"] == config.root_volume_iops


def test_a_warm_pool_keeps_stopped_instances_ready_and_takes_them_back(synth: Synth) -> None:
    _, pool = _one(synth, "AWS::AutoScaling::WarmPool")
    assert pool["MinSize"] == pool["MaxGroupPreparedCapacity"] == synth.stack.config.warm_pool_size == 1
    assert pool["PoolState"] == "Stopped"
    assert pool["InstanceReusePolicy"] == {"ReuseOnScaleIn": True}
    # The agent joins the cluster only when the instance leaves the pool.
    assert "ECS_WARM_POOLS_CHECK=true" in _user_data(synth)


def test_the_image_is_pulled_while_the_instance_boots_and_the_launch_waits_for_it(synth: Synth) -> None:
    _, hook = _one(synth, "AWS::AutoScaling::LifecycleHook")
    assert hook["LifecycleHookName"] == PRE_PULL_HOOK_NAME
    assert hook["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_LAUNCHING"
    # A pull that fails or hangs delays the launch; it never stops it.
    assert hook["DefaultResult"] == "CONTINUE"
    user_data = _user_data(synth)
    assert f"docker pull {COMFYUI_IMAGE}" in user_data
    assert "docker login" in user_data  # an ECR image
    assert f"systemctl enable {PRE_PULL_UNIT}" in user_data
    assert "Before=ecs.service" in user_data
    assert f"--lifecycle-hook-name {PRE_PULL_HOOK_NAME}" in user_data
    # The instance may pull from exactly the ComfyUI repository.
    instance_role = synth.logical_id(synth.stack.runners.instance_role)
    pulls = [
        statement
        for policy in synth.resources("AWS::IAM::Policy").values()
        if {"Ref": instance_role} in policy["Roles"]
        for statement in policy["PolicyDocument"]["Statement"]
        if "ecr:BatchGetImage" in statement["Action"]
    ]
    assert pulls
    assert all("repository/comfyui" in json.dumps(statement["Resource"]) for statement in pulls)


def test_office_hours_keep_a_minimum_of_runners_on_schedule(synth: Synth) -> None:
    _, target = _one(synth, "AWS::ApplicationAutoScaling::ScalableTarget")
    actions = [
        (a["Schedule"], a["ScalableTargetAction"].get("MinCapacity"), a.get("Timezone"))
        for a in target["ScheduledActions"]
    ]
    assert actions == [(f"cron({s['cron']})", s["minRunners"], s["timeZone"]) for s in OFFICE_HOURS]


def test_the_cold_start_helpers_are_off_unless_asked_for(optional_synth: Synth) -> None:
    config = ServiceConfig()
    assert (config.warm_pool_size, config.pre_pull_image, config.scheduled_min_runners) == (0, False, ())
    for resource_type in ("AWS::AutoScaling::WarmPool", "AWS::AutoScaling::LifecycleHook"):
        assert optional_synth.resources(resource_type) == {}
    _, target = _one(optional_synth, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert "ScheduledActions" not in target
    assert "docker pull" not in _user_data(optional_synth)


def test_the_wake_up_alarm_holds_its_state_while_sqs_publishes_nothing(synth: Synth) -> None:
    wake = synth.resources("AWS::CloudWatch::Alarm")[synth.logical_id(synth.stack.runners.wake_alarm)]
    # Missing data is an idle queue, or metrics late after one: never a reason to call off a wake-up.
    assert wake["TreatMissingData"] == "ignore"
    assert "ApproximateNumberOfMessagesVisible" in {m["MetricName"] for m in _metrics(wake).values()}


# -- alarms ----------------------------------------------------------------------------------------


def test_dead_letters_alarm_on_receipt_too_because_the_dlq_function_drains_them_at_once(
    synth: Synth,
) -> None:
    alarm = _alarm(synth, "DeadLetters")
    dlq = {"Fn::GetAtt": [synth.logical_id(synth.stack.data.dead_letter_queue), "QueueName"]}
    metrics = _metrics(alarm)
    assert {m["MetricName"] for m in metrics.values()} == {
        "NumberOfMessagesReceived",
        "ApproximateNumberOfMessagesVisible",
    }
    assert all(m["Dimensions"] == [{"Name": "QueueName", "Value": dlq}] for m in metrics.values())
    assert _expression(alarm) == "FILL(received, 0) + FILL(visible, 0)"
    assert alarm["Threshold"] == 1


def test_an_alarm_fires_when_runners_stay_below_the_desired_count(synth: Synth) -> None:
    alarm = _alarm(synth, "RunnersBelowDesired")
    assert {m["MetricName"] for m in _metrics(alarm).values()} == {"DesiredTaskCount", "RunningTaskCount"}
    assert _expression(alarm) == "FILL(desired, 0) - FILL(running, 0)"
    assert alarm["EvaluationPeriods"] == RUNNER_SHORTFALL_MINUTES


def test_an_alarm_fires_when_gpu_instances_do_not_come(synth: Synth) -> None:
    alarm = _alarm(synth, "GpuCapacityShortfall")
    assert (alarm["Namespace"], alarm["MetricName"]) == (
        "AWS/ECS/ManagedScaling",
        "CapacityProviderReservation",
    )
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 100)


def test_every_function_and_table_has_a_throttle_alarm(synth: Synth) -> None:
    alarms = synth.resources("AWS::CloudWatch::Alarm").values()
    throttled_functions = {json.dumps(a["Dimensions"]) for a in alarms if a.get("MetricName") == "Throttles"}
    for function in (
        synth.stack.api_function,
        synth.stack.dlq_function,
        synth.stack.ws_authorizer,
        synth.stack.ws_routes,
    ):
        dimensions = [{"Name": "FunctionName", "Value": {"Ref": synth.logical_id(function.function)}}]
        assert json.dumps(dimensions) in throttled_functions
    data = synth.stack.data
    for name, table in (
        ("Jobs", data.jobs_table),
        ("Connections", data.connections_table),
    ):
        alarm = _alarm(synth, f"{name}TableThrottles")
        metrics = _metrics(alarm)
        assert {m["MetricName"] for m in metrics.values()} == {"ReadThrottleEvents", "WriteThrottleEvents"}
        table_ref = {"Ref": synth.logical_id(table)}
        assert all(m["Dimensions"] == [{"Name": "TableName", "Value": table_ref}] for m in metrics.values())


def test_an_alarm_fires_on_the_job_failure_rate_from_the_runners_metrics(synth: Synth) -> None:
    alarm = _alarm(synth, "JobFailureRate")
    metrics = _metrics(alarm)
    assert {m["MetricName"] for m in metrics.values()} == {JobMetric.SUCCEEDED, JobMetric.FAILED}
    assert all(m["Namespace"] == METRICS_NAMESPACE for m in metrics.values())
    assert "100 * FILL(failed, 0)" in _expression(alarm)


def test_gpu_alarms_read_what_the_runner_reports(synth: Synth) -> None:
    idle = _alarm(synth, "GpuIdleWithJobsInHand")
    assert {m["MetricName"] for m in _metrics(idle).values()} == {
        GpuMetric.UTILIZATION,
        "ApproximateNumberOfMessagesNotVisible",
    }
    assert idle["ComparisonOperator"] == "LessThanThreshold"
    full = _alarm(synth, "GpuMemoryFull")
    (memory,) = _metrics(full).values()
    assert (memory["Namespace"], memory["MetricName"]) == (METRICS_NAMESPACE, GpuMetric.MEMORY_UTILIZATION)
    (dashboard,) = synth.resources("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["DashboardBody"])
    assert GpuMetric.UTILIZATION in body and GpuMetric.MEMORY_UTILIZATION in body


# -- the API's share of Lambda concurrency -----------------------------------------------------------


def test_the_api_function_has_reserved_concurrency_and_waits_bounded_to_fit_in_it(synth: Synth) -> None:
    config = ServiceConfig()
    function = synth.resources("AWS::Lambda::Function")[synth.logical_id(synth.stack.api_function.function)]
    assert function["ReservedConcurrentExecutions"] == config.api_reserved_concurrency
    environment = function["Environment"]["Variables"]
    assert int(environment["PREFER_WAIT_MAX_SECONDS"]) == config.prefer_wait_max_seconds
    assert config.prefer_wait_max_seconds < ApiSettings.model_fields["prefer_wait_max_seconds"].default
    # At the stage's throttle, every request waiting as long as it may fits in the reservation.
    throttle = config.api_throttle
    peak = throttle.burst_limit + throttle.rate_limit * (config.prefer_wait_max_seconds + 1)
    assert peak <= config.api_reserved_concurrency
    # The other functions share what is left; none of them reserves (or is capped at) a share.
    reserved = [
        p for p in synth.resources("AWS::Lambda::Function").values() if "ReservedConcurrentExecutions" in p
    ]
    assert len(reserved) == 1


# -- the public face -------------------------------------------------------------------------------


def test_the_rest_api_is_served_on_the_custom_domain_when_one_is_given(synth: Synth) -> None:
    domain_id, domain = _one(synth, "AWS::ApiGateway::DomainName")
    assert domain["DomainName"] == CUSTOM_DOMAIN
    assert domain["RegionalCertificateArn"] == CERTIFICATE_ARN
    assert domain["EndpointConfiguration"] == {"Types": ["REGIONAL"]}
    assert domain["SecurityPolicy"] == "TLS_1_2"
    _, mapping = _one(synth, "AWS::ApiGateway::BasePathMapping")
    assert mapping["DomainName"] == {"Ref": domain_id}
    assert "BasePath" not in mapping  # the domain's root is the stage
    outputs = synth.json["Outputs"]
    assert outputs["RestApiUrl"]["Value"] == f"https://{CUSTOM_DOMAIN}/v1/"
    assert outputs["CustomDomainTarget"]["Value"] == {"Fn::GetAtt": [domain_id, "RegionalDomainName"]}


def test_there_is_no_custom_domain_unless_asked_for(optional_synth: Synth) -> None:
    assert optional_synth.resources("AWS::ApiGateway::DomainName") == {}
    assert "CustomDomainTarget" not in optional_synth.json["Outputs"]
