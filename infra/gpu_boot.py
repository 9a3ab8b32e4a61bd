"""How a GPU instance comes up fast: a warm pool, a pre-pulled ComfyUI image, and the user data for both.

A cold start is dominated by pulling the ComfyUI image onto a fresh root volume (docs/deploy.md has the
timeline). A warm-pool instance has booted once already and, with ``prePullImage``, pulled the image before
it was stopped, so waking it skips both; the ECS agent joins the cluster only once the instance leaves the
pool (``ECS_WARM_POOLS_CHECK``).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from aws_cdk import Aws, Duration
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.config import ServiceConfig

PRE_PULL_HOOK_NAME = "comfyui-image-pre-pull"
PRE_PULL_SCRIPT = "/usr/local/bin/comfyui-image-pre-pull"
PRE_PULL_UNIT = "comfyui-image-pre-pull.service"
# How long a launching instance may spend pulling before it goes on anyway (the hook's default: continue).
PRE_PULL_TIMEOUT = Duration.minutes(30)
_WARM_POOL_STATES = {
    "Stopped": autoscaling.PoolState.STOPPED,
    "Running": autoscaling.PoolState.RUNNING,
    "Hibernated": autoscaling.PoolState.HIBERNATED,
}
_ECR_REGISTRY = re.compile(
    r"^(?P<registry>\d{12}\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?)/"
)


def boot_commands(config: ServiceConfig) -> list[str]:
    """Shell lines for the launch template's user data (CDK adds the cluster's own ECS_CLUSTER line)."""
    commands: list[str] = []
    if config.warm_pool_size:
        # The agent must not register while the instance is being prepared in the warm pool.
        commands.append("echo ECS_WARM_POOLS_CHECK=true >> /etc/ecs/ecs.config")
    if config.pre_pull_image and config.comfyui_image:
        commands += _pre_pull(config.comfyui_image)
    return commands


def _pre_pull(image: str) -> list[str]:
    """A boot-time unit that pulls the image and then lets the launch go on, before the ECS agent starts.

    A systemd unit rather than user data: user data runs once (the lifecycle hook holds an instance both
    when it enters the warm pool and when it leaves it), and Docker may not be up yet while it runs.
    """
    login = ""
    ecr = _ECR_REGISTRY.match(image)
    if ecr:
        login = (
            f"aws ecr get-login-password --region {ecr['region']} | "
            f"docker login --username AWS --password-stdin {ecr['registry']} || true\n"
        )
    imds = "http://169.254.169.254/latest"
    script = (
        "#!/bin/bash\n"
        'TOKEN=$(curl -sS -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 300" ' + f"{imds}/api/token)\n"
        f'INSTANCE_ID=$(curl -sS -H "X-aws-ec2-metadata-token: $TOKEN" {imds}/meta-data/instance-id)\n'
        f'REGION=$(curl -sS -H "X-aws-ec2-metadata-token: $TOKEN" {imds}/meta-data/placement/region)\n'
        "command -v aws >/dev/null || dnf install -y awscli-2\n"
        f"{login}"
        f"docker pull {shlex.quote(image)} || echo 'pre-pull failed; the ECS agent pulls at task start'\n"
        'GROUP=$(aws autoscaling describe-auto-scaling-instances --region "$REGION" '
        '--instance-ids "$INSTANCE_ID" --query "AutoScalingInstances[0].AutoScalingGroupName" '
        "--output text)\n"
        'aws autoscaling complete-lifecycle-action --region "$REGION" --instance-id "$INSTANCE_ID" '
        f'--auto-scaling-group-name "$GROUP" --lifecycle-hook-name {PRE_PULL_HOOK_NAME} '
        "--lifecycle-action-result CONTINUE || true\n"
    )
    unit = (
        "[Unit]\n"
        "Description=Pull the ComfyUI image before the ECS agent starts\n"
        "Requires=docker.service\n"
        "After=docker.service network-online.target\n"
        "Wants=network-online.target\n"
        "Before=ecs.service\n"
        "[Service]\n"
        "Type=oneshot\n"
        f"ExecStart={PRE_PULL_SCRIPT}\n"
        f"TimeoutStartSec={int(PRE_PULL_TIMEOUT.to_seconds())}\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )
    return [
        f"cat > {PRE_PULL_SCRIPT} <<'SCRIPT'\n{script}SCRIPT",
        f"chmod +x {PRE_PULL_SCRIPT}",
        f"cat > /etc/systemd/system/{PRE_PULL_UNIT} <<'UNIT'\n{unit}UNIT",
        "systemctl daemon-reload",
        f"systemctl enable {PRE_PULL_UNIT}",
        # Queued, not waited for: it runs once Docker is up, and the agent waits for it.
        f"systemctl start --no-block {PRE_PULL_UNIT}",
    ]


@dataclass
class WarmStart:
    warm_pool: autoscaling.WarmPool | None
    pre_pull_policy: iam.Policy | None


def add_warm_start(
    scope: Construct, config: ServiceConfig, group: autoscaling.AutoScalingGroup, instance_role: iam.IRole
) -> WarmStart:
    """The warm pool and the pre-pull lifecycle hook that ``config`` asks for."""
    policy = None
    if config.pre_pull_image:
        group.add_lifecycle_hook(
            "PrePull",
            lifecycle_hook_name=PRE_PULL_HOOK_NAME,
            lifecycle_transition=autoscaling.LifecycleTransition.INSTANCE_LAUNCHING,
            default_result=autoscaling.DefaultResult.CONTINUE,
            heartbeat_timeout=PRE_PULL_TIMEOUT,
        )
        # A policy of its own: the group waits for the role's default policy, and this one names the
        # group, which would make a cycle.
        policy = iam.Policy(
            scope,
            "PrePullPolicy",
            roles=[instance_role],
            statements=[
                iam.PolicyStatement(
                    actions=["autoscaling:CompleteLifecycleAction"],
                    resources=[
                        f"arn:{Aws.PARTITION}:autoscaling:{Aws.REGION}:{Aws.ACCOUNT_ID}:autoScalingGroup:*:"
                        f"autoScalingGroupName/{group.auto_scaling_group_name}"
                    ],
                ),
                # The instance finds its own group's name; Describe* has no resource-level permissions.
                iam.PolicyStatement(actions=["autoscaling:DescribeAutoScalingInstances"], resources=["*"]),
            ],
        )
    warm_pool = None
    if config.warm_pool_size:
        warm_pool = group.add_warm_pool(
            min_size=config.warm_pool_size,
            max_group_prepared_capacity=config.warm_pool_size,
            pool_state=_WARM_POOL_STATES[config.warm_pool_state],
            # An instance scaled in goes back to the pool, image and all, instead of being terminated.
            reuse_on_scale_in=True,
        )
    return WarmStart(warm_pool, policy)


def root_volume(config: ServiceConfig) -> ec2.BlockDevice:
    """The encrypted gp3 root volume; its throughput bounds how fast the image lands on disk."""
    return ec2.BlockDevice(
        device_name="/dev/xvda",
        volume=ec2.BlockDeviceVolume.ebs(
            config.root_volume_gib,
            encrypted=True,
            volume_type=ec2.EbsDeviceVolumeType.GP3,
            iops=config.root_volume_iops,
            throughput=config.root_volume_throughput_mibps,
            delete_on_termination=True,
        ),
    )
