"""The ``comfy-jobs`` command line."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from comfy_jobs.client import WAIT_PROGRESS_RATE, Client
from comfy_jobs.errors import ComfyJobsError, WaitTimeout
from comfy_jobs.models import Event, Job, Model, Preview, Snapshot, Template
from comfy_jobs.progress import ProgressBar
from comfy_jobs.webhooks_cli import add_webhooks_parser, run_webhooks

OK, FAILED, USAGE, CANCELED, EXPIRED, API_ERROR, TIMED_OUT, INTERNAL_ERROR = 0, 1, 2, 3, 4, 5, 6, 7
EXIT_FOR_STATUS = {"succeeded": OK, "failed": FAILED, "canceled": CANCELED, "expired": EXPIRED}

EPILOG = """\
environment:
  COMFY_API_URL   the API's base URL (or --url)
  COMFY_API_KEY   your API key (or --key)

exit codes:
  0  succeeded, or the command did what it was asked
  1  the job failed
  2  usage error
  3  the job was canceled
  4  the job expired before it ran
  5  API error: bad key, not found, invalid request, service unreachable
  6  timed out waiting for the job
  7  an unexpected error inside comfy-jobs (the message says what; please report it)
submit --wait, watch and status exit with the job's code once it has ended (status of a running job: 0).
"""


def parse_assignment(text: str, *, as_json: bool) -> tuple[str, Any]:
    """``k=v``; with ``as_json`` the value is JSON when it parses as JSON, else the string itself."""
    name, eq, value = text.partition("=")
    if not eq or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    if not as_json:
        return name, value
    try:
        return name, json.loads(value)
    except ValueError:
        return name, value


def _param(text: str) -> tuple[str, Any]:
    return parse_assignment(text, as_json=True)


def _input(text: str) -> tuple[str, Any]:
    return parse_assignment(text, as_json=False)


def _metadata(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--metadata is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("--metadata must be a JSON object")
    return value


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def _common() -> argparse.ArgumentParser:
    """Global options, also accepted after the command; SUPPRESS keeps a subcommand from resetting them.

    A fresh parser each time: ``parents`` shares its Action objects, so shared defaults would leak.
    """
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine output")
    common.add_argument("--url", default=argparse.SUPPRESS, help="API base URL (default: $COMFY_API_URL)")
    common.add_argument("--key", default=argparse.SUPPRESS, help="API key (default: $COMFY_API_KEY)")
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="comfy-jobs",
        description="Submit ComfyUI workflows to comfy-api-service, follow them and download their outputs.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_common()],
    )
    parser.set_defaults(json=False, url=None, key=None)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    submit = commands.add_parser("submit", parents=[_common()], help="submit a workflow file or a template")
    submit.add_argument("file", nargs="?", type=Path, help="a workflow in ComfyUI's API format (JSON)")
    submit.add_argument("--template", help="a template's name instead of a workflow file")
    submit.add_argument(
        "--param",
        action="append",
        type=_param,
        default=[],
        metavar="K=V",
        help="a template parameter; V is JSON when it parses as JSON, else a string",
    )
    submit.add_argument(
        "--input",
        action="append",
        type=_input,
        default=[],
        metavar="NAME=PATH",
        help="upload PATH and use it as the param NAME (or a workflow's NODE.INPUT)",
    )
    submit.add_argument("--metadata", type=_metadata, help="a JSON object stored with the job")
    submit.add_argument("--idempotency-key", help="default: a new random key")
    submit.add_argument("--wait", action="store_true", help="follow the job with a progress bar")
    submit.add_argument("--out", type=Path, help="save the outputs here (implies --wait; default: .)")
    submit.add_argument("--timeout", type=float, help="seconds to wait at most")
    submit.add_argument("--webhook", metavar="URL", help="also send this job's outcome here (signed)")

    status = commands.add_parser("status", parents=[_common()], help="show a job")
    status.add_argument("job_id")
    listing = commands.add_parser("list", parents=[_common()], help="list your jobs, newest first")
    listing.add_argument(
        "--status", choices=["queued", "running", "succeeded", "failed", "canceled", "expired"]
    )
    listing.add_argument("--limit", type=int, default=20, help="how many jobs at most (default 20)")
    cancel = commands.add_parser("cancel", parents=[_common()], help="cancel a job")
    cancel.add_argument("job_id")
    watch = commands.add_parser("watch", parents=[_common()], help="follow a job live until it ends")
    watch.add_argument("job_id")
    watch.add_argument("--timeout", type=float, help="seconds to wait at most")
    watch.add_argument(
        "--previews",
        type=Path,
        metavar="DIR",
        help="ask for live previews (about one JPEG a second) and save each into DIR as <job_id>-<seq>.jpg",
    )
    templates = commands.add_parser("templates", parents=[_common()], help="list templates, or show one")
    templates.add_argument("name", nargs="?")
    add_webhooks_parser(commands, _common)
    models = commands.add_parser("models", parents=[_common()], help="list the models jobs may name")
    models.add_argument("--folder", help="only this folder: checkpoints, loras, vae, ...")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "submit" and (args.file is None) == (args.template is None):
        parser.error("submit takes a workflow FILE or --template NAME (one of them)")
    if args.command == "submit" and args.file is not None and args.param:
        parser.error("--param goes with --template; edit the workflow file for its values")
    url = args.url or os.environ.get("COMFY_API_URL")
    key = args.key or os.environ.get("COMFY_API_KEY")
    if not url:
        parser.error("no API URL: pass --url or set COMFY_API_URL")
    if not key:
        parser.error("no API key: pass --key or set COMFY_API_KEY")
    out = Output(args.json)
    try:
        return run(args, Client(url, key), parser, out)
    except WaitTimeout as exc:
        out.error(str(exc))
        return TIMED_OUT
    except ComfyJobsError as exc:
        out.error(str(exc))
        return API_ERROR
    except OSError as exc:  # a local file: an input that cannot be read, an --out that cannot be written
        out.error(f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc))
        return USAGE
    except KeyboardInterrupt:
        out.end_progress()
        return 130
    except Exception as exc:  # a bug still ends with a message and a documented code, not a traceback
        out.error(f"unexpected error ({type(exc).__name__}): {exc}")
        return INTERNAL_ERROR


def run(
    args: argparse.Namespace, client: Client, parser: argparse.ArgumentParser, out: Output | None = None
) -> int:
    out = out or Output(args.json)
    if args.command == "submit":
        return submit(args, client, parser, out)
    if args.command == "status":
        job = client.get(args.job_id)
        out.job(job)
        return EXIT_FOR_STATUS.get(job.status, OK)
    if args.command == "list":
        jobs = list(client.list(status=args.status, limit=args.limit))
        out.jobs(jobs)
        return OK
    if args.command == "cancel":
        out.job(client.cancel(args.job_id))
        return OK
    if args.command == "watch":
        job = follow(client, args.job_id, args.timeout, out, args.previews)
        out.job(job)
        return EXIT_FOR_STATUS.get(job.status, OK)
    if args.command == "webhooks":
        return run_webhooks(args, client)
    if args.command == "templates":
        out.templates(
            [client.template(args.name)] if args.name else client.templates(), detail=bool(args.name)
        )
        return OK
    if args.command == "models":
        out.models(list(client.models(folder=args.folder)))
        return OK
    parser.error(f"unknown command {args.command}")


def submit(args: argparse.Namespace, client: Client, parser: argparse.ArgumentParser, out: Output) -> int:
    workflow = None
    if args.file is not None:
        try:
            workflow = json.loads(args.file.read_text())
        except (OSError, ValueError) as exc:
            parser.error(f"cannot read the workflow {args.file}: {exc}")
    uploads = dict(args.input)
    for name, path in uploads.items():
        if not Path(path).is_file():
            parser.error(f"--input {name}: no such file {path}")
    try:
        job = client.submit(
            workflow,
            template=args.template,
            params=dict(args.param) or None,
            uploads=uploads or None,
            metadata=args.metadata,
            idempotency_key=args.idempotency_key,
            webhook=args.webhook,
        )
    except ValueError as exc:
        parser.error(str(exc))
    if not (args.wait or args.out):
        out.job(job)
        return OK
    out.note(f"job {job.job_id} {job.status}")
    # With --json, stdout holds just the final job; `watch --json` is the way to get each event.
    job = client.wait(job.job_id, timeout=args.timeout, on_event=None if out.as_json else out.progress())
    files = client.download(job, args.out or ".") if job.status == "succeeded" else []
    out.job(job, files)
    return EXIT_FOR_STATUS.get(job.status, OK)


# Progress frames a second asked for while drawing a progress bar.
BAR_PROGRESS_RATE = 2.0


def follow(
    client: Client, job_id: str, timeout: float | None, out: Output, previews: Path | None = None
) -> Job:
    """The job once it has ended, drawing progress (or, with --json, printing each event as a line);
    with ``previews``, each live preview is saved there."""
    show = out.event if out.as_json else out.progress()
    saved: list[Path] = []

    def on_event(event: Event) -> None:
        if previews is not None and isinstance(event, Preview):
            path = event.save(previews)
            if path is not None:
                saved.append(path)
        show(event)

    # A drawn bar moves twice a second; events printed as JSON come at wait()'s economical default.
    rate = WAIT_PROGRESS_RATE if out.as_json else BAR_PROGRESS_RATE
    job = client.wait(
        job_id, timeout=timeout, on_event=on_event, previews=previews is not None, progress_rate=rate
    )
    if previews is not None:
        out.note(f"{len(saved)} previews saved in {previews}")
    return job


class Output:
    """Human text by default; one JSON document per result (or per event) with --json."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self._bar: ProgressBar | None = None

    def progress(self) -> ProgressBar:
        self._bar = ProgressBar(sys.stderr)
        return self._bar

    def end_progress(self) -> None:
        """Close a progress bar's line, so that what follows starts on a line of its own."""
        if self._bar is not None:
            self._bar.finish()

    def note(self, text: str) -> None:
        if not self.as_json:
            self.end_progress()
            print(text, file=sys.stderr)

    def error(self, text: str) -> None:
        self.end_progress()
        print(f"comfy-jobs: {text}", file=sys.stderr)

    def event(self, event: Event) -> None:
        print(json.dumps(event_dict(event), default=str), flush=True)

    def job(self, job: Job, files: list[Path] | None = None) -> None:
        self.end_progress()
        if self.as_json:
            print(json.dumps({**job.raw, **({"files": [str(f) for f in files]} if files else {})}))
            return
        print(f"job {job.job_id}: {job.status}" + (" (cancel requested)" if job.cancel_requested else ""))
        print(f"  progress  {job.progress:.0f}%   attempts {job.attempts}")
        for label, when in (
            ("created", job.created_at),
            ("started", job.started_at),
            ("finished", job.finished_at),
        ):
            if when:
                print(f"  {label:<9} {when.isoformat()}")
        if job.started_at and job.finished_at:
            print(f"  took      {(job.finished_at - job.started_at).total_seconds():.2f} s")
        if job.error:
            print(f"  error     {job.error}")
        for output in job.outputs:
            print(f"  output    {output.filename} ({output.content_type}, {output.size} bytes)")
        for path in files or []:
            print(f"  saved     {path}")

    def jobs(self, jobs: list[Job]) -> None:
        if self.as_json:
            print(json.dumps([job.raw for job in jobs]))
            return
        for job in jobs:
            created = job.created_at.isoformat(timespec="seconds") if job.created_at else ""
            print(f"{job.job_id}  {job.status:<10} {job.progress:5.0f}%  {created}")

    def models(self, models: list[Model]) -> None:
        if self.as_json:
            items = [{**dataclasses.asdict(m), "updated_at": _iso(m.updated_at)} for m in models]
            print(json.dumps({"items": items}))
            return
        for model in models:
            digest = f"  sha256 {model.sha256[:12]}…" if model.sha256 else ""
            print(f"{model.folder}/{model.name}  {_size(model.size)}{digest}")

    def templates(self, templates: list[Template], detail: bool) -> None:
        if self.as_json:
            items = [dataclasses.asdict(t) for t in templates]
            print(json.dumps(items[0] if detail else {"items": items}))
            return
        for template in templates:
            print(f"{template.name}  {template.description}")
            if detail:
                required = set(template.parameters.get("required", []))
                for name, schema in template.parameters.get("properties", {}).items():
                    default = f" = {json.dumps(schema['default'])}" if "default" in schema else ""
                    flag = " (required)" if name in required else ""
                    kind = schema.get("type", "any")
                    print(f"  {name}: {kind}{default}{flag}  {schema.get('description', '')}")


def event_dict(event: Event) -> dict[str, Any]:
    kind = type(event).__name__
    if isinstance(event, Snapshot):
        return {"type": "job.snapshot", "job": event.job.raw, "seq": event.seq}
    body = dataclasses.asdict(event)
    if isinstance(event, Preview):
        # The image is saved with --previews, never printed: its size says what it was.
        body["image"] = len(event.image) if event.image is not None else None
    names = {
        "Progress": "job.progress",
        "StatusChange": "job.status",
        "Preview": "job.preview",
        "ErrorEvent": "error",
    }
    return {"type": names.get(kind, kind), **body}


if __name__ == "__main__":
    sys.exit(main())
