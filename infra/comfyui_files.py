"""ComfyUI's folders shared with the runner, and the file-input catalog's place in the bucket.

ComfyUI keeps every prompt's inputs, outputs and temp files on its disk and never removes them, and all
tenants' jobs share one ComfyUI. Its input, output and temp folders are therefore task volumes mounted
in both containers: the runner stages a job's uploads and removes the job's files once they are in S3.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

from shared.names import COMFYUI_CATALOG_KEY, Env

# Where the runner container sees each folder; ComfyUI's own paths come from the deployment's config.
RUNNER_MOUNTS = {
    "input": "/comfyui-files/input",
    "output": "/comfyui-files/output",
    "temp": "/comfyui-files/temp",
}
RUNNER_ENV = {
    "input": Env.COMFYUI_INPUT_DIR,
    "output": Env.COMFYUI_OUTPUT_DIR,
    "temp": Env.COMFYUI_TEMP_DIR,
}


def share_comfyui_folders(
    task_definition: ecs.TaskDefinition,
    comfyui: ecs.ContainerDefinition,
    runner: ecs.ContainerDefinition,
    comfyui_paths: dict[str, str],
) -> None:
    """One task-scoped volume per folder, at ComfyUI's path in its container and the runner's in its."""
    for kind, comfyui_path in comfyui_paths.items():
        volume = f"comfyui-{kind}"
        # No host path: a Docker volume that lives and dies with the task, on the instance's disk.
        task_definition.add_volume(name=volume)
        comfyui.add_mount_points(
            ecs.MountPoint(container_path=comfyui_path, source_volume=volume, read_only=False)
        )
        runner.add_mount_points(
            ecs.MountPoint(container_path=RUNNER_MOUNTS[kind], source_volume=volume, read_only=False)
        )


def runner_folder_environment() -> dict[str, str]:
    return {RUNNER_ENV[kind]: path for kind, path in RUNNER_MOUNTS.items()}


def catalog_statements(bucket: s3.IBucket, actions: Sequence[str]) -> list[iam.PolicyStatement]:
    """``actions`` on the catalog object, and a listing of that one key so a missing catalog reads as
    404 (without it S3 answers 403) on a fresh deploy."""
    return [
        iam.PolicyStatement(actions=list(actions), resources=[bucket.arn_for_objects(COMFYUI_CATALOG_KEY)]),
        iam.PolicyStatement(
            actions=["s3:ListBucket"],
            resources=[bucket.bucket_arn],
            conditions={"StringEquals": {"s3:prefix": COMFYUI_CATALOG_KEY}},
        ),
    ]
