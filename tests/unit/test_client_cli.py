"""The command line's argument parsing and exit codes, with no network."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
from comfy_jobs import cli
from comfy_jobs.models import Job, Progress

BASE = {"job_id": "j1", "attempts": 1, "progress": 0, "outputs": []}


@pytest.mark.parametrize(
    ("text", "value"),
    [("steps=20", 20), ("cfg=7.5", 7.5), ("flag=true", True), ("prompt=a red fox", "a red fox"),
     ('seed="42"', "42"), ("size=[1, 2]", [1, 2]), ("eq=a=b", "a=b"), ("empty=", "")],
)  # fmt: skip
def test_params_are_json_when_they_parse_and_strings_otherwise(text: str, value: Any) -> None:
    assert cli.parse_assignment(text, as_json=True)[1] == value


def test_inputs_stay_paths() -> None:
    assert cli.parse_assignment("image=42.png", as_json=False) == ("image", "42.png")
    with pytest.raises(argparse.ArgumentTypeError):
        cli.parse_assignment("no-equals", as_json=True)


@pytest.mark.parametrize(
    "argv",
    [[], ["submit"], ["submit", "w.json", "--template", "t"], ["submit", "w.json", "--param", "a=1"],
     ["list", "--status", "nope"], ["frobnicate"], ["submit", "--template", "t", "--metadata", "[1]"]],
)  # fmt: skip
def test_usage_errors_exit_2(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMFY_API_URL", "http://api.test")
    monkeypatch.setenv("COMFY_API_KEY", "k")
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2


def test_a_missing_url_or_key_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMFY_API_URL", raising=False)
    monkeypatch.delenv("COMFY_API_KEY", raising=False)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["status", "j1"])
    assert exit_.value.code == 2


def test_global_options_work_before_or_after_the_command() -> None:
    parser = cli.build_parser()
    assert parser.parse_args(["--key", "a", "--json", "list"]).key == "a"
    after = parser.parse_args(["list", "--key", "b", "--json"])
    assert after.key == "b" and after.json is True
    assert parser.parse_args(["list"]).json is False


@pytest.mark.parametrize(
    ("status", "code"),
    [("succeeded", 0), ("failed", 1), ("canceled", 3), ("expired", 4), ("running", 0), ("queued", 0)],
)
def test_status_exits_with_the_jobs_code(status: str, code: int, capsys: pytest.CaptureFixture[str]) -> None:
    class Stub:
        def get(self, job_id: str) -> Job:
            return Job.from_dict({**BASE, "job_id": job_id, "status": status})

    args = cli.build_parser().parse_args(["status", "j1"])
    assert cli.run(args, Stub(), cli.build_parser()) == code  # type: ignore[arg-type]
    assert f"job j1: {status}" in capsys.readouterr().out


def test_help_lists_every_exit_code() -> None:
    text = cli.build_parser().format_help()
    for code in range(8):
        assert f"\n  {code}  " in text


def test_a_missing_url_names_the_flag_and_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("COMFY_API_URL", raising=False)
    monkeypatch.setenv("COMFY_API_KEY", "k")
    with pytest.raises(SystemExit):
        cli.main(["status", "j1"])
    error = capsys.readouterr().err
    assert "--url" in error and "COMFY_API_URL" in error and "base_url" not in error
    monkeypatch.setenv("COMFY_API_URL", "http://api.test")
    monkeypatch.delenv("COMFY_API_KEY")
    with pytest.raises(SystemExit):
        cli.main(["status", "j1"])
    assert "--key or set COMFY_API_KEY" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "content"),
    [("missing.json", None), ("a-directory", "dir"), ("empty.json", b""), ("latin1.json", b"\xe9\xff"),
     ("not.json", b"{'single': 'quotes'}"), ("truncated.json", b'{"1": {')],
)  # fmt: skip
def test_every_unreadable_workflow_file_is_a_message_and_exit_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    content: bytes | str | None,
) -> None:
    monkeypatch.setenv("COMFY_API_URL", "http://api.test")
    monkeypatch.setenv("COMFY_API_KEY", "k")
    path = tmp_path / name
    if content == "dir":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["submit", str(path)])
    assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert f"cannot read the workflow {path}" in error and "Traceback" not in error


def test_local_file_errors_exit_2_and_a_crash_exits_7_each_with_a_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COMFY_API_URL", "http://api.test")
    monkeypatch.setenv("COMFY_API_KEY", "k")
    for raised, code, message in [
        (
            PermissionError(13, "Permission denied", "cat.png"),
            cli.USAGE,
            "comfy-jobs: cat.png: Permission denied",
        ),
        (TypeError("'int' object is not a mapping"), cli.INTERNAL_ERROR, "unexpected error (TypeError)"),
    ]:

        def fail(*_args: Any, error: Exception = raised) -> int:
            raise error

        monkeypatch.setattr(cli, "run", fail)
        assert cli.main(["status", "j1"]) == code
        assert message in capsys.readouterr().err


def test_a_message_after_a_progress_bar_starts_on_its_own_line(capsys: pytest.CaptureFixture[str]) -> None:
    out = cli.Output(as_json=False)
    out.progress()(Progress("j1", "3", "KSampler", 2, 10, 20.0))
    out.error("job j1 did not finish within 3 s")
    assert capsys.readouterr().err.endswith("\ncomfy-jobs: job j1 did not finish within 3 s\n")
    quiet = cli.Output(as_json=False)
    quiet.progress()
    quiet.error("no bar was drawn")
    assert capsys.readouterr().err == "comfy-jobs: no bar was drawn\n"


def test_watch_with_previews_asks_for_them_and_saves_each_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from comfy_jobs.models import Preview

    def preview(seq: int, image: bytes | None) -> Preview:
        return Preview("j1", "3", seq, 20, "image/jpeg", 4, 4, image, seq=seq)

    class Stub:
        asked: bool | None = None
        rate: float | None = None

        def wait(
            self,
            job_id: str,
            timeout: Any = None,
            on_event: Any = None,
            previews: bool = False,
            progress_rate: float | None = None,
        ) -> Job:
            self.asked = previews
            self.rate = progress_rate
            # A live preview, and one replayed from the log that keeps no image.
            for event in (preview(5, b"\xff\xd8one"), preview(6, None), preview(9, b"\xff\xd8two")):
                on_event(event)
            return Job.from_dict({**BASE, "job_id": job_id, "status": "succeeded"})

    stub = Stub()
    args = cli.build_parser().parse_args(["watch", "j1", "--previews", str(tmp_path / "p"), "--json"])
    assert cli.run(args, stub, cli.build_parser()) == 0  # type: ignore[arg-type]
    assert stub.asked is True and stub.rate == 0.2, "JSON events at wait()'s rate; a drawn bar asks 2"
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["j1-5.jpg", "j1-9.jpg"]
    assert (tmp_path / "p" / "j1-9.jpg").read_bytes() == b"\xff\xd8two"
    printed = [line for line in capsys.readouterr().out.splitlines() if '"job.preview"' in line]
    assert len(printed) == 3 and '"image": 5' in printed[0], "the image's size is printed, never its bytes"


def test_a_watch_that_draws_a_bar_asks_for_two_progress_frames_a_second() -> None:
    class Stub:
        rate: float | None = None

        def wait(self, job_id: str, progress_rate: float | None = None, **_: Any) -> Job:
            self.rate = progress_rate
            return Job.from_dict({**BASE, "job_id": job_id, "status": "succeeded"})

    stub = Stub()
    assert cli.run(cli.build_parser().parse_args(["watch", "j1"]), stub, cli.build_parser()) == 0  # type: ignore[arg-type]
    assert stub.rate == cli.BAR_PROGRESS_RATE == 2.0
