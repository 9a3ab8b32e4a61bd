"""The model library and the runners' model cache: where models come from, and where they land.

Models are read from ``s3://<modelsBucket>/<modelsPrefix>`` (the artifacts bucket by default) and nothing
else of it: the API lists and describes them, the runner reads them. Each GPU instance keeps one cache
for all its runners on its NVMe instance store where the type has one (g4dn, g5, g6, g6e, ...), else on
a gp3 volume of its own; a boot-time unit mounts it (each boot: an instance store is blank after a stop)
and writes the ``extra_model_paths.yaml`` ComfyUI is started with.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import ServiceConfig
from infra.environment import setting_env
from shared.aws.models import normalize_prefix
from shared.model_paths import EXTRA_MODEL_PATHS_FILE, extra_model_paths_yaml
from shared.settings import ApiSettings, RunnerSettings

# Families whose every size has local NVMe instance storage.
INSTANCE_STORE_FAMILIES = frozenset(
    {"g4dn", "g4ad", "g5", "g6", "g6e", "gr6", "p3dn", "p4d", "p4de", "p5", "p5e", "p5en"}
)
HOST_CACHE_PATH = "/mnt/comfy-model-cache"
# Where both containers see the cache (ComfyUI: --extra-model-paths-config <it>/extra_model_paths.yaml).
CONTAINER_CACHE_PATH = "/models-cache"
CACHE_VOLUME_DEVICE = "/dev/xvdb"
CACHE_UNIT = "comfy-model-cache.service"
CACHE_SCRIPT = "/usr/local/bin/comfy-model-cache-mount"
GIB = 1024**3


def has_instance_store(instance_type: str) -> bool:
    return instance_type.split(".")[0] in INSTANCE_STORE_FAMILIES


def needs_cache_volume(instance_types: Sequence[str]) -> bool:
    """A gp3 volume for the cache unless every instance type (of a pool) has an instance store."""
    return not all(has_instance_store(t) for t in instance_types)


class ModelLibrary(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: ServiceConfig, artifacts: s3.IBucket):
        super().__init__(scope, construct_id)
        self.bucket = (
            s3.Bucket.from_bucket_name(self, "Bucket", config.models_bucket)
            if config.models_bucket
            else artifacts
        )
        self.prefix = normalize_prefix(config.models_prefix)

    @property
    def location(self) -> str:
        return f"s3://{self.bucket.bucket_name}/{self.prefix}"

    def environment(self) -> dict[str, str]:
        for model in (ApiSettings, RunnerSettings):  # both read the library from the same names
            setting_env(model, "models_bucket"), setting_env(model, "models_prefix")
        return {"MODELS_BUCKET": self.bucket.bucket_name, "MODELS_PREFIX": self.prefix}

    def grant_read(self, role: iam.IGrantable) -> None:
        """GetObject (and HeadObject) on the library's objects, and listing only under its prefix."""
        principal = role.grant_principal
        for statement in (
            iam.PolicyStatement(
                actions=["s3:GetObject"], resources=[self.bucket.arn_for_objects(f"{self.prefix}*")]
            ),
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[self.bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": f"{self.prefix}*"}},
            ),
        ):
            principal.add_to_principal_policy(statement)


def cache_environment(config: ServiceConfig) -> dict[str, str]:
    return {
        setting_env(RunnerSettings, "model_cache_dir"): CONTAINER_CACHE_PATH,
        setting_env(RunnerSettings, "model_cache_bytes"): str(config.model_cache_gib * GIB),
        setting_env(RunnerSettings, "warmup_workflow"): config.warmup_workflow,
    }


def mount_cache(task_definition: ecs.TaskDefinition, *containers: ecs.ContainerDefinition) -> None:
    """The instance's cache, shared by every task (and so every runner) on it."""
    task_definition.add_volume(name="model-cache", host=ecs.Host(source_path=HOST_CACHE_PATH))
    for container in containers:
        container.add_mount_points(
            ecs.MountPoint(container_path=CONTAINER_CACHE_PATH, source_volume="model-cache", read_only=False)
        )


def cache_block_device(config: ServiceConfig, instance_types: Sequence[str]) -> ec2.BlockDevice | None:
    if not needs_cache_volume(instance_types):
        return None
    return ec2.BlockDevice(
        device_name=CACHE_VOLUME_DEVICE,
        volume=ec2.BlockDeviceVolume.ebs(
            config.model_cache_volume_gib,
            encrypted=True,
            volume_type=ec2.EbsDeviceVolumeType.GP3,
            iops=config.root_volume_iops,
            throughput=config.root_volume_throughput_mibps,
            delete_on_termination=True,
        ),
    )


def cache_boot_commands(config: ServiceConfig) -> list[str]:
    """User data that installs a unit mounting the cache at every boot, before the ECS agent starts."""
    owner = shlex.quote(config.comfyui_user)
    script = (
        "#!/bin/bash\n"
        "set -euo pipefail\n"
        f"mkdir -p {HOST_CACHE_PATH}\n"
        f"if mountpoint -q {HOST_CACHE_PATH}; then exit 0; fi\n"
        # The first NVMe instance store, else the cache's own gp3 volume, else the root volume's disk.
        "DEVICE=$(lsblk -dpno NAME,MODEL | awk '/Instance Storage/ {print $1; exit}')\n"
        f'if [ -z "$DEVICE" ] && [ -e {CACHE_VOLUME_DEVICE} ]; then DEVICE={CACHE_VOLUME_DEVICE}; fi\n'
        'if [ -n "$DEVICE" ]; then\n'
        '  blkid "$DEVICE" >/dev/null || mkfs.xfs -q "$DEVICE"\n'
        f'  mount -o noatime "$DEVICE" {HOST_CACHE_PATH}\n'
        "fi\n"
        f"cat > {HOST_CACHE_PATH}/{EXTRA_MODEL_PATHS_FILE} <<'YAML'\n"
        f"{extra_model_paths_yaml(CONTAINER_CACHE_PATH)}"
        "YAML\n"
        f"chown {owner} {HOST_CACHE_PATH}\n"
    )
    unit = (
        "[Unit]\n"
        "Description=Mount the model cache before the ECS agent starts\n"
        "Before=ecs.service docker.service\n"
        "After=local-fs.target\n"
        "[Service]\n"
        "Type=oneshot\n"
        f"ExecStart={CACHE_SCRIPT}\n"
        "RemainAfterExit=yes\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )
    return [
        f"cat > {CACHE_SCRIPT} <<'SCRIPT'\n{script}SCRIPT",
        f"chmod 755 {CACHE_SCRIPT}",
        f"cat > /etc/systemd/system/{CACHE_UNIT} <<'UNIT'\n{unit}UNIT",
        "systemctl daemon-reload",
        f"systemctl enable --now {CACHE_UNIT}",
    ]
