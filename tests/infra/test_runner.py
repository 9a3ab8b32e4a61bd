"""The GPU runners: two containers per task, one GPU each, capacity from a GPU group, backlog scaling."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match

from infra.config import ServiceConfig
from infra.models import CONTAINER_CACHE_PATH, HOST_CACHE_PATH
from infra.runner import COMFYUI_HEALTH_PATH, RUNNER_DOCKERFILE
from shared.names import Env
from tests.infra.conftest import COMFYUI_IMAGE, Synth

pytestmark = pytest.mark.infra


def _containers(synth: Synth) -> dict[str, dict[str, Any]]:
    (task,) = synth.resources("AWS::ECS::TaskDefinition").values()
    return {container["Name"]: container for container in task["ContainerDefinitions"]}


def test_the_task_runs_comfyui_and_the_runner_side_by_side_on_awsvpc(synth: Synth) -> None:
    (task,) = synth.resources("AWS::ECS::TaskDefinition").values()
    assert task["NetworkMode"] == "awsvpc"
    assert task["RequiresCompatibilities"] == ["EC2"]
    assert set(_containers(synth)) == {"comfyui", "runner"}


def test_comfyui_has_the_gpu_and_a_health_check(synth: Synth) -> None:
    comfyui = _containers(synth)["comfyui"]
    assert comfyui["ResourceRequirements"] == [{"Type": "GPU", "Value": "1"}]
    command = comfyui["HealthCheck"]["Command"]
    assert command[0] == "CMD-SHELL"
    assert f"localhost:{ServiceConfig().comfyui_port}{COMFYUI_HEALTH_PATH}" in command[1]
    # The platform team's ECR image: account, repository and tag from comfyuiImage.
    assert "comfyui:test" in json.dumps(comfyui["Image"])
    assert COMFYUI_IMAGE.split(".")[0] in json.dumps(comfyui["Image"])


def test_the_runner_waits_for_a_healthy_comfyui_and_has_time_to_stop(synth: Synth) -> None:
    containers = _containers(synth)
    runner = containers["runner"]
    assert runner["DependsOn"] == [{"ContainerName": "comfyui", "Condition": "HEALTHY"}]
    assert "ResourceRequirements" not in runner
    stop_timeout = ServiceConfig().stop_timeout_seconds
    assert runner["StopTimeout"] == stop_timeout
    assert containers["comfyui"]["StopTimeout"] == stop_timeout
    for container in containers.values():
        assert container["LogConfiguration"]["LogDriver"] == "awslogs"


def test_the_runner_image_is_built_from_its_dockerfile_for_x86(synth: Synth) -> None:
    manifest = json.loads((synth.outdir / f"{synth.stack.artifact_id}.assets.json").read_text())
    (image,) = manifest["dockerImages"].values()
    assert image["source"]["dockerFile"] == RUNNER_DOCKERFILE
    assert image["source"]["platform"] == "linux/amd64"
    staged = synth.outdir / image["source"]["directory"]
    # Only the build context the Dockerfile copies was staged, not the whole project.
    # templates/: a warm-up workflow may name one.
    assert {path.name for path in staged.iterdir()} == {
        "requirements.txt",
        "shared",
        "gpu_runner",
        "templates",
    }


def test_the_capacity_provider_scales_a_gpu_group_from_zero(synth: Synth) -> None:
    config = ServiceConfig()
    synth.template.has_resource_properties(
        "AWS::ECS::CapacityProvider",
        {
            "AutoScalingGroupProvider": {
                "ManagedScaling": {"Status": "ENABLED", "TargetCapacity": 100},
                "ManagedTerminationProtection": "ENABLED",
                "ManagedDraining": "ENABLED",
                "AutoScalingGroupArn": Match.any_value(),
            }
        },
    )
    synth.template.has_resource_properties(
        "AWS::AutoScaling::AutoScalingGroup",
        {"MinSize": "0", "MaxSize": str(2 * config.max_runners), "NewInstancesProtectedFromScaleIn": True},
    )
    synth.template.has_resource_properties(
        "AWS::ECS::Cluster", {"ClusterSettings": [{"Name": "containerInsights", "Value": "enabled"}]}
    )


def test_instances_require_imdsv2_and_encrypt_their_root(synth: Synth) -> None:
    config = ServiceConfig()
    (template,) = synth.resources("AWS::EC2::LaunchTemplate").values()
    data = template["LaunchTemplateData"]
    assert data["InstanceType"] == config.instance_types[0]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    (device,) = data["BlockDeviceMappings"]
    assert device["Ebs"]["Encrypted"] is True
    assert device["Ebs"]["VolumeSize"] == config.root_volume_gib


def test_the_service_starts_at_zero_on_the_gpu_capacity_provider(synth: Synth) -> None:
    (service,) = synth.resources("AWS::ECS::Service").values()
    assert service["DesiredCount"] == 0
    (strategy,) = service["CapacityProviderStrategy"]
    (provider_id,) = synth.resources("AWS::ECS::CapacityProvider")
    assert strategy["CapacityProvider"] == {"Ref": provider_id}
    assert service["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"] == "DISABLED"


def test_the_service_tracks_jobs_per_task_and_wakes_from_zero(synth: Synth) -> None:
    config = ServiceConfig()
    synth.template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget",
        {
            "MinCapacity": 0,
            "MaxCapacity": config.max_runners,
            "ScalableDimension": "ecs:service:DesiredCount",
        },
    )
    policies = synth.resources("AWS::ApplicationAutoScaling::ScalingPolicy")
    tracking = next(p for p in policies.values() if p["PolicyType"] == "TargetTrackingScaling")
    tracking_config = tracking["TargetTrackingScalingPolicyConfiguration"]
    assert tracking_config["TargetValue"] == config.target_jobs_per_runner
    queries = {query["Id"]: query for query in tracking_config["CustomizedMetricSpecification"]["Metrics"]}
    names = {q["MetricStat"]["Metric"]["MetricName"] for q in queries.values() if "MetricStat" in q}
    assert names == {
        "ApproximateNumberOfMessagesVisible",
        "ApproximateNumberOfMessagesNotVisible",
        "DesiredTaskCount",
    }
    (result,) = [q for q in queries.values() if q.get("ReturnData")]
    assert "/" in result["Expression"]

    step = next(p for p in policies.values() if p["PolicyType"] == "StepScaling")
    assert step["StepScalingPolicyConfiguration"]["AdjustmentType"] == "ExactCapacity"
    (step_id,) = [i for i, p in policies.items() if p is step]
    wake_alarms = [
        alarm
        for alarm in synth.resources("AWS::CloudWatch::Alarm").values()
        if {"Ref": step_id} in alarm.get("AlarmActions", [])
    ]
    assert len(wake_alarms) == 1


def test_comfyui_folders_are_task_volumes_mounted_in_both_containers_and_named_to_the_runner(
    synth: Synth,
) -> None:
    (task,) = synth.resources("AWS::ECS::TaskDefinition").values()
    config = ServiceConfig()
    assert {volume["Name"] for volume in task["Volumes"]} == {
        "comfyui-input",
        "comfyui-output",
        "comfyui-temp",
        "model-cache",
    }
    containers = _containers(synth)
    comfyui_mounts = {
        m["SourceVolume"]: m["ContainerPath"]
        for m in containers["comfyui"]["MountPoints"]
        if m["SourceVolume"] != "model-cache"
    }
    assert comfyui_mounts == {
        "comfyui-input": config.comfyui_input_dir,
        "comfyui-output": config.comfyui_output_dir,
        "comfyui-temp": config.comfyui_temp_dir,
    }
    runner_mounts = {m["SourceVolume"]: m["ContainerPath"] for m in containers["runner"]["MountPoints"]}
    environment = {item["Name"]: item["Value"] for item in containers["runner"]["Environment"]}
    assert containers["runner"]["User"] == config.comfyui_user  # it removes the files ComfyUI wrote
    for kind, name in (
        ("input", Env.COMFYUI_INPUT_DIR),
        ("output", Env.COMFYUI_OUTPUT_DIR),
        ("temp", Env.COMFYUI_TEMP_DIR),
    ):
        assert environment[name] == runner_mounts[f"comfyui-{kind}"]


def test_the_model_cache_is_the_instances_disk_mounted_in_both_containers(synth: Synth) -> None:
    (task,) = synth.resources("AWS::ECS::TaskDefinition").values()
    [volume] = [v for v in task["Volumes"] if v["Name"] == "model-cache"]
    assert volume["Host"] == {"SourcePath": HOST_CACHE_PATH}  # one cache per instance, for all its runners
    containers = _containers(synth)
    for name in ("comfyui", "runner"):
        mounts = {m["SourceVolume"]: m["ContainerPath"] for m in containers[name]["MountPoints"]}
        assert mounts["model-cache"] == CONTAINER_CACHE_PATH
    environment = {item["Name"]: item["Value"] for item in containers["runner"]["Environment"]}
    assert environment["MODEL_CACHE_DIR"] == CONTAINER_CACHE_PATH
    assert environment["MODEL_CACHE_BYTES"] == str(ServiceConfig().model_cache_gib * 1024**3)
