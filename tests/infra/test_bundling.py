"""The Lambda asset: local pip bundling for the Lambda platform, and only the code packages inside."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import DockerIgnoreStrategy, GlobIgnoreStrategy

from infra.bundling import PROJECT_ROOT, REQUIREMENTS, PipLocalBundling, asset_excludes
from infra.runner import runner_image_excludes

pytestmark = pytest.mark.infra


@pytest.mark.parametrize(
    ("path", "kept"),
    [
        ("shared/names.py", True),
        ("functions/api/handler.py", True),
        (REQUIREMENTS, True),
        ("gpu_runner/runner.py", False),
        ("infra/stack.py", False),
        ("tests/unit/__init__.py", False),
        (".venv/bin/python", False),
        ("shared/__pycache__/names.cpython-311.pyc", False),
    ],
)
def test_the_lambda_asset_holds_only_the_code_packages(path: str, kept: bool) -> None:
    strategy = GlobIgnoreStrategy(str(PROJECT_ROOT), asset_excludes())
    assert strategy.ignores(str(PROJECT_ROOT / path)) is not kept


@pytest.mark.parametrize(
    ("path", "kept"),
    [
        ("requirements.txt", True),
        ("shared/names.py", True),
        ("gpu_runner/__main__.py", True),
        ("gpu_runner/Dockerfile", True),
        ("functions/api/handler.py", False),
        ("infra/stack.py", False),
        (".venv/bin/python", False),
    ],
)
def test_the_runner_image_context_holds_only_what_the_dockerfile_copies(path: str, kept: bool) -> None:
    strategy = DockerIgnoreStrategy(str(PROJECT_ROOT), runner_image_excludes())
    assert strategy.ignores(str(PROJECT_ROOT / path)) is not kept


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The commands bundling runs, each answered as a success without running it."""
    ran: list[list[str]] = []

    def fake_run(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        ran.append(command)
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(subprocess, "run", fake_run)
    return ran


def test_local_bundling_installs_lambda_platform_wheels_and_copies_the_packages(
    tmp_path: Path, calls: list[list[str]]
) -> None:
    assert PipLocalBundling("arm64").try_bundle(str(tmp_path)) is True
    command, compile_command = calls
    assert command[:4] == [sys.executable, "-m", "pip", "install"]
    assert command[command.index("--platform") + 1] == "manylinux2014_aarch64"
    assert command[command.index("--python-version") + 1] == "3.11"
    assert "--only-binary=:all:" in command
    assert command[command.index("--target") + 1] == str(tmp_path)
    assert (tmp_path / "shared" / "names.py").is_file()
    assert (tmp_path / "functions" / "api" / "handler.py").is_file()
    assert not list(tmp_path.rglob("__pycache__"))
    # Bytecode for the runtime's Python, trusted without the source's timestamps (the zip drops them).
    assert compile_command[0] == sys.executable  # this interpreter is the runtime's version, 3.11
    assert compile_command[1:3] == ["-m", "compileall"]
    assert compile_command[compile_command.index("--invalidation-mode") + 1] == "unchecked-hash"
    assert compile_command[-1] == str(tmp_path)


def test_snap_start_bundles_wheels_and_bytecode_for_python_312(
    tmp_path: Path, calls: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: f"/opt/{name}" if name == "python3.12" else None)
    assert PipLocalBundling("arm64", python_version="3.12").try_bundle(str(tmp_path)) is True
    pip, compile_command = calls
    assert pip[pip.index("--python-version") + 1] == "3.12"
    assert pip[pip.index("--platform") + 1] == "manylinux2014_aarch64"
    assert compile_command[0] == "/opt/python3.12"


def test_without_an_interpreter_of_the_runtimes_version_the_asset_ships_without_bytecode(
    tmp_path: Path, calls: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    assert PipLocalBundling("x86_64", python_version="3.12").try_bundle(str(tmp_path)) is True
    assert [command[1:3] for command in calls] == [["-m", "pip"]]


def test_a_failed_pip_hands_over_to_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_run(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(command, 1, "", "no matching distribution")

    monkeypatch.setattr(subprocess, "run", failing_run)
    assert PipLocalBundling("x86_64").try_bundle(str(tmp_path)) is False


def test_the_functions_requirements_are_pinned_as_in_the_root_requirements() -> None:
    def pins(path: Path) -> dict[str, str]:
        lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
        return dict(line.split("==", 1) for line in lines if "==" in line)

    functions = pins(PROJECT_ROOT / REQUIREMENTS)
    root = pins(PROJECT_ROOT / "requirements.txt")
    assert functions
    assert {name: root.get(name) for name in functions} == functions
