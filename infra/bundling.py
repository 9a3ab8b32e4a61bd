"""The Lambda code asset: ``shared/`` and ``functions/`` plus their wheels for the Lambda platform.

Bundling runs locally with pip (``--platform`` wheels, so no Docker is needed), and falls back to
the Lambda build image in Docker when pip cannot do it. Tests skip bundling altogether through the
``aws:cdk:bundling-stacks`` context, which keeps synthesis offline.

The asset carries its bytecode: ``/var/task`` is read-only, so without ``.pyc`` files every cold start
compiles every module it imports (the service's and its wheels') from source. The files are compiled
with ``unchecked-hash`` invalidation, which Python trusts without comparing the source's modification
time (the zip does not keep it); they are written only by an interpreter of the runtime's version.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import BundlingOptions, IgnoreMode, ILocalBundling
from aws_cdk import aws_lambda as lambda_

PROJECT_ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = "functions/requirements.txt"
# The packages that make up the Lambda code; everything else in the project stays out of the asset.
# templates/ ships with the code: the API function reads the JSON files at run time.
CODE_PACKAGES = ("shared", "functions", "templates")
RUNTIME = lambda_.Runtime.PYTHON_3_11
PYTHON_VERSION = "3.11"
# SnapStart needs python3.12 or later (infra.snapstart); the wheels and bytecode follow the runtime.
RUNTIMES = {"3.11": lambda_.Runtime.PYTHON_3_11, "3.12": lambda_.Runtime.PYTHON_3_12}
# Lambda's python3.11 runtime is Amazon Linux 2 (glibc 2.26): manylinux2014 wheels are the newest that
# load there, and they load on python3.12's Amazon Linux 2023 too.
PIP_PLATFORMS = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}
DOCKER_PLATFORMS = {"arm64": "linux/arm64", "x86_64": "linux/amd64"}
_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache", ".pytest_cache")


def asset_excludes() -> list[str]:
    """Glob excludes that leave only the code packages and the requirements file in the source hash."""
    keep = [f"!{package}" for package in CODE_PACKAGES] + [f"!{package}/**" for package in CODE_PACKAGES]
    return ["*", *keep, "**/__pycache__", "**/*.pyc"]


@jsii.implements(ILocalBundling)
class PipLocalBundling:
    """Installs the wheels with this interpreter's pip and copies the packages; no container needed."""

    def __init__(
        self, architecture: str, source: Path = PROJECT_ROOT, python_version: str = PYTHON_VERSION
    ) -> None:
        self._platform = PIP_PLATFORMS[architecture]
        self._source = source
        self._python_version = python_version

    def try_bundle(self, output_dir: str, *_args: Any, **_options: Any) -> bool:
        out = Path(output_dir)
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            "--platform",
            self._platform,
            "--implementation",
            "cp",
            "--python-version",
            self._python_version,
            "--only-binary=:all:",
            "--target",
            str(out),
            "--requirement",
            str(self._source / REQUIREMENTS),
        ]
        # A pip failure (no index, no wheel for the platform) hands over to Docker bundling.
        result = subprocess.run(command, check=False, capture_output=True, text=True)  # noqa: S603
        if result.returncode != 0:
            sys.stderr.write(f"local bundling failed, trying Docker:\n{result.stderr}\n")
            return False
        for package in CODE_PACKAGES:
            shutil.copytree(self._source / package, out / package, ignore=_SKIP, dirs_exist_ok=True)
        compile_bytecode(out, self._python_version)
        return True


def interpreter_for(python_version: str) -> str | None:
    """A Python of exactly this version (bytecode is per version), or None."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == python_version:
        return sys.executable
    return shutil.which(f"python{python_version}")


def compile_bytecode(directory: Path, python_version: str) -> bool:
    """Writes ``__pycache__`` for every module under ``directory``; False when it could not.

    Without bytecode the asset still works, only slower to start, so a missing interpreter or a file
    that does not compile (some wheels ship templates named .py) is a warning, not a failed build.
    """
    python = interpreter_for(python_version)
    if python is None:
        sys.stderr.write(f"no python{python_version} here: the asset ships without bytecode\n")
        return False
    command = [python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash"]
    result = subprocess.run([*command, str(directory)], check=False, capture_output=True, text=True)  # noqa: S603
    if result.returncode != 0:
        sys.stderr.write(
            f"some modules did not compile to bytecode:\n{(result.stdout + result.stderr)[-2000:]}\n"
        )
    return result.returncode == 0


def lambda_code(architecture: str, python_version: str = PYTHON_VERSION) -> lambda_.Code:
    """One asset for every function of the service (they share the code and differ by handler)."""
    copy_packages = " ".join(CODE_PACKAGES)
    runtime = RUNTIMES[python_version]
    docker_command = (
        f"pip install --no-compile --target /asset-output --requirement {REQUIREMENTS}"
        f" && cp -r {copy_packages} /asset-output/"
        " && find /asset-output -name __pycache__ -type d -prune -exec rm -rf {} +"
        # The build image is the runtime's: its python writes the bytecode that runtime reads.
        " && (python -m compileall -q -j 0 --invalidation-mode unchecked-hash /asset-output || true)"
    )
    return lambda_.Code.from_asset(
        str(PROJECT_ROOT),
        exclude=asset_excludes(),
        ignore_mode=IgnoreMode.GLOB,
        bundling=BundlingOptions(
            image=runtime.bundling_image,
            command=["bash", "-c", docker_command],
            platform=DOCKER_PLATFORMS[architecture],
            local=PipLocalBundling(architecture, python_version=python_version),
        ),
    )
