"""``python -m admin models ...``: the model library, for the platform team.

``upload`` stores a model file under ``<folder>/<name>`` with its SHA-256 (which runners verify after
every fetch); ``list`` shows what is there. Against AWS it finds the library from the stack's
``ModelsLocation`` output (``s3://bucket/prefix``); ``--local`` uses the local stack's moto.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from admin.tenants import AdminError
from shared.aws.models import ModelLibrary, ModelMismatch, ModelObject
from shared.model_refs import ModelRef, name_problem
from shared.names import MODELS_LOCATION_OUTPUT


def add_parser(groups: Any, where: Any) -> None:
    """The ``models`` command group; ``where`` adds the --local/--profile/... options to a parser."""
    models = groups.add_parser("models", help="the model library runners fetch from", description=__doc__)
    where(models)
    models.add_argument("--location", help="s3://bucket/prefix of the library (default: the stack's)")
    commands = models.add_subparsers(dest="command", required=True)
    upload = commands.add_parser("upload", help="store a model file with its sha256")
    upload.add_argument("folder", help="ComfyUI's folder for it: checkpoints, loras, vae, controlnet, ...")
    upload.add_argument("file", type=Path, help="the model file")
    upload.add_argument("--name", help="its name in the folder (default: the file's name); may hold '/'")
    upload.add_argument("--replace", action="store_true", help="store other bytes under a name already taken")
    listing = commands.add_parser("list", help="the models in the library")
    listing.add_argument("--folder", help="only this folder")


def parse_location(location: str) -> tuple[str, str]:
    if not location.startswith("s3://"):
        raise AdminError(f"{location!r} is not an s3://bucket/prefix location")
    bucket, _, prefix = location[len("s3://") :].partition("/")
    if not bucket:
        raise AdminError(f"{location!r} names no bucket")
    return bucket, prefix


def location_of(session: boto3.session.Session, stack_name: str, endpoint_url: str | None) -> str:
    cloudformation = session.client("cloudformation", endpoint_url=endpoint_url)
    try:
        [stack] = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except (ClientError, BotoCoreError) as error:
        raise AdminError(
            f"cannot read stack {stack_name!r} (use --stack-name or --location): {error}"
        ) from error
    for output in stack.get("Outputs", []):
        if output["OutputKey"] == MODELS_LOCATION_OUTPUT:
            return str(output["OutputValue"])
    raise AdminError(
        f"stack {stack_name!r} has no {MODELS_LOCATION_OUTPUT} output: deploy this version first"
    )


def run(library: ModelLibrary, args: argparse.Namespace) -> Any:
    if args.command == "upload":
        if not args.file.is_file():
            raise AdminError(f"{args.file} is not a file")
        ref = ModelRef(args.folder, args.name or args.file.name)
        problem = name_problem(ref.name) or name_problem(ref.folder)
        if problem or "/" in ref.folder:
            raise AdminError(problem or f"{ref.folder!r}: a folder is one of ComfyUI's folder names")
        try:
            return as_json(library.upload(ref, args.file, replace=args.replace), library)
        except ModelMismatch as mismatch:
            raise AdminError(str(mismatch)) from None
    items: list[dict[str, Any]] = []
    after = None
    while True:
        page, after = library.page(1000, after, args.folder)
        items += [as_json(model, library) for model in page]
        if after is None:
            return items


def as_json(model: ModelObject, library: ModelLibrary) -> dict[str, Any]:
    return {**asdict(model.ref), "size": model.size, "sha256": model.sha256, "key": library.key(model.ref)}
