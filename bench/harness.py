"""The stack every measurement shares: the local stack, a simulator that logs its progress frames,
the call counters, and REST and WebSocket clients of the public API."""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import requests
from botocore.config import Config

from bench.capacity import Capacity
from bench.counters import CallLog, PostLog
from bench.gateway_meter import GatewayMeter
from bench.wsclient import JobSocket
from gpu_runner.job import prompt_id_for
from local import processes
from local.comfyui_sim.executor import GC_INTERVAL_SECONDS, GC_PAUSE_SECONDS
from local.settings import LocalStackSettings
from local.stack import ACCOUNT_ID, REGION, LocalStack
from shared.aws.connections import CANCEL_MARK
from shared.model_paths import EXTRA_MODEL_PATHS_FILE, extra_model_paths_yaml
from shared.names import ConnectionAttr

API_KEY = "bench-key"
LAMBDA_APP_ID = "bench-lambda"
RUNNER_APP_ID = "bench-runner"
FLOOR_APP_ID = "bench-floor"
STOPS_LOG = "stop-requests.jsonl"


@dataclass
class Bench:
    stack: LocalStack
    simulator: subprocess.Popen[bytes]
    frames_log: Path
    gc_log: Path
    calls: CallLog
    posts: PostLog
    gateway: GatewayMeter
    runners: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _session: requests.Session = field(default_factory=requests.Session)

    @property
    def rest_url(self) -> str:
        return self.stack.rest_url

    @property
    def resources(self) -> Any:
        assert self.stack.resources is not None
        return self.stack.resources

    def background(self) -> set[str]:
        """Resources only the stack's own pollers touch: the DLQ, and the jobs table's stream (Lambda's
        own poller reads it in AWS, free of charge for a Lambda trigger)."""
        return {
            "queue " + self.resources.dlq_url.rsplit("/", 1)[-1],
            "stream " + self.resources.jobs_table,
        }

    def client(self) -> requests.Session:
        session = requests.Session()
        session.headers["x-api-key"] = API_KEY
        return session

    def boto(self, service: str, pool: int = 10) -> Any:
        """A client of the stack's moto, tagged as the bench's own, with ``pool`` connections."""
        session = boto3.session.Session(
            aws_access_key_id="local", aws_secret_access_key="local", region_name=REGION
        )
        # Retries as the service's own clients have them: moto answers 500 to some concurrent transactions.
        config = Config(
            user_agent_appid=FLOOR_APP_ID,
            retries={"mode": "standard", "max_attempts": 5},
            max_pool_connections=pool,
        )
        if service == "s3":
            config = config.merge(Config(s3={"addressing_style": "path"}))
        return session.client(service, endpoint_url=self.stack.aws_endpoint, config=config)

    def boto_management(self) -> Any:
        """The @connections client, as the runner makes it, tagged as the bench's own."""
        session = boto3.session.Session(
            aws_access_key_id="local", aws_secret_access_key="local", region_name=REGION
        )
        config = Config(user_agent_appid=FLOOR_APP_ID, retries={"mode": "standard", "max_attempts": 1})
        return session.client(
            "apigatewaymanagementapi", endpoint_url=self.stack.management_url, config=config
        )

    def connection_of(self, socket: JobSocket, job_id: str) -> str:
        """The id API Gateway gave ``socket``, found through the subscription it just made."""
        db = self.boto("dynamodb")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            items = db.query(
                TableName=self.resources.connections_table,
                KeyConditionExpression="#j = :j",
                ExpressionAttributeNames={"#j": ConnectionAttr.JOB},
                ExpressionAttributeValues={":j": {"S": job_id}},
            )["Items"]
            ids = [str(i[ConnectionAttr.CONNECTION_ID]["S"]) for i in items]
            # A cancel mark shares the partition; it is never a connection.
            connections = [i for i in ids if i != CANCEL_MARK]
            if connections:
                return connections[0]
            time.sleep(0.05)
        raise TimeoutError("the subscription did not appear")

    def submit(self, session: requests.Session, workflow: dict[str, Any]) -> str:
        response = session.post(
            f"{self.rest_url}/v1/jobs",
            json={"workflow": workflow},
            headers={"Idempotency-Key": uuid.uuid4().hex},
            timeout=30,
        )
        if response.status_code != 202:
            raise RuntimeError(f"submit answered {response.status_code}: {response.text[:300]}")
        return str(response.json()["job_id"])

    def socket(self) -> JobSocket:
        token = self.client().post(f"{self.rest_url}/v1/ws-tokens", timeout=10)
        token.raise_for_status()
        return JobSocket(token.json()["url"])

    def start_runner(self, prefetch: int = 1) -> subprocess.Popen[bytes]:
        runner = self.stack.start_runner(
            {"PREFETCH": str(prefetch), "AWS_SDK_UA_APP_ID": RUNNER_APP_ID, "LOG_LEVEL": "WARNING"}
        )
        self.runners.append(runner)
        return runner

    def ensure_runner(self) -> None:
        if not any(runner.poll() is None for runner in self.runners):
            self.start_runner()

    def stop_runners(self) -> None:
        for runner in self.runners:
            processes.stop(runner, timeout=20)
        self.runners.clear()

    def execution(self, job_id: str, attempt: int = 1) -> tuple[float, float] | None:
        """ComfyUI's own (execution_start, execution_success) for the job's attempt, in epoch seconds."""
        prompt_id = prompt_id_for(job_id, attempt)
        entry = self._session.get(f"{self.stack.comfyui_url}/history/{prompt_id}", timeout=10).json()
        messages = (entry.get(prompt_id) or {}).get("status", {}).get("messages") or []
        stamps = {event: data.get("timestamp") for event, data in messages}
        start, end = stamps.get("execution_start"), stamps.get("execution_success")
        if start is None or end is None:
            return None
        return start / 1000, end / 1000

    def progress_sends(self) -> dict[tuple[str, str, float], float]:
        """When the simulator sent each progress frame, by (prompt id, node, value)."""
        sent: dict[tuple[str, str, float], float] = {}
        for line in self.frames_log.read_text().splitlines():
            at, prompt_id, node, value, _ = json.loads(line)
            sent.setdefault((str(prompt_id), str(node), float(value)), float(at))
        return sent

    def stop_requests(self) -> dict[tuple[str, str], float]:
        """When the simulator first received each stop request, by (kind, prompt id)."""
        received: dict[tuple[str, str], float] = {}
        path = self.frames_log.parent / STOPS_LOG
        for line in path.read_text().splitlines() if path.exists() else []:
            at, kind, prompt_id = json.loads(line)
            received.setdefault((str(kind), str(prompt_id)), float(at))
        return received

    def gc_pauses(self) -> list[tuple[float, float]]:
        """ComfyUI's garbage collections as (start, end) in epoch seconds (the simulator's own pauses)."""
        return [(float(a), float(b)) for a, b in map(json.loads, self.gc_log.read_text().splitlines())]

    def purge_queue(self) -> None:
        """Drops messages a measurement left behind so the next one starts from an empty queue.

        Received and deleted rather than purged: SQS allows one purge a minute. Only with no runner up.
        """
        sqs, url = self.boto("sqs"), self.resources.queue_url
        while True:
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
                "Messages", []
            )
            if not messages:
                return
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
            sqs.delete_message_batch(QueueUrl=url, Entries=entries)

    def reset(self) -> None:
        """A clean slate between measurements: no runner, an empty queue, empty tables.

        Some of moto's calls slow down as a table grows; emptying the tables keeps one measurement from
        paying for the items the ones before it left.
        """
        self.stop_runners()
        self.purge_queue()
        db = self.boto("dynamodb")
        for table in (
            self.resources.jobs_table,
            self.resources.connections_table,
        ):
            keys = [k["AttributeName"] for k in db.describe_table(TableName=table)["Table"]["KeySchema"]]
            for page in db.get_paginator("scan").paginate(TableName=table):
                items = [{k: item[k] for k in keys} for item in page.get("Items", [])]
                for start in range(0, len(items), 25):
                    batch = [{"DeleteRequest": {"Key": key}} for key in items[start : start + 25]]
                    db.batch_write_item(RequestItems={table: batch})

    def wait_terminal(self, session: requests.Session, job_ids: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = list(job_ids)
        while pending and time.monotonic() < deadline:
            status = session.get(f"{self.rest_url}/v1/jobs/{pending[0]}", timeout=10).json()["status"]
            if status in {"succeeded", "failed", "canceled", "expired"}:
                pending.pop(0)
            else:
                time.sleep(0.05)
        if pending:
            raise TimeoutError(f"{len(pending)} jobs did not finish within {timeout:.0f} s")


def _start_simulator(
    state: Path, step_delay: float, gc_scale: float
) -> tuple[subprocess.Popen[bytes], str, Path, Path]:
    port = processes.free_port()
    frames_log, gc_log = state / "progress-frames.jsonl", state / "gc-pauses.jsonl"
    stops_log = state / STOPS_LOG
    gc_log.touch()
    # The stack makes the runners' model cache at this path; ComfyUI reads it as an extra model path.
    model_paths = state / "model-cache" / EXTRA_MODEL_PATHS_FILE
    model_paths.parent.mkdir(parents=True)
    model_paths.write_text(extra_model_paths_yaml(str(model_paths.parent)))
    process = processes.start_simulator(
        port,
        step_delay,
        state / "comfyui",
        state / "comfyui-sim.log",
        module="bench.sim_observer",
        extra_args=(
            "--extra-model-paths-config",
            str(model_paths),
            "--frames-log",
            str(frames_log),
            "--stops-log",
            str(stops_log),
            "--gc-log",
            str(gc_log),
            "--gc-interval",
            str(GC_INTERVAL_SECONDS * gc_scale),
            "--gc-pause",
            str(GC_PAUSE_SECONDS * gc_scale),
        ),
    )
    return process, f"http://127.0.0.1:{port}", frames_log, gc_log


@contextmanager
def bench_stack(step_delay: float, gc_scale: float = 1.0) -> Iterator[Bench]:
    """``gc_scale`` shrinks ComfyUI's garbage collection interval and pause with the jobs' length."""
    with tempfile.TemporaryDirectory(prefix="comfy-bench-") as directory:
        state = Path(directory)
        simulator, url, frames_log, gc_log = _start_simulator(state, step_delay, gc_scale)
        calls, posts, gateway = CallLog(Capacity(ACCOUNT_ID, REGION)), PostLog(), GatewayMeter()
        calls.install()
        posts.install()
        gateway.install()
        # The Lambda handlers run in this process: their SDK clients carry this tag.
        os.environ["AWS_SDK_UA_APP_ID"] = LAMBDA_APP_ID
        # The handlers log as deployed; what they write is counted (bench.gateway_meter), not shown.
        os.environ["POWERTOOLS_LOG_LEVEL"] = "INFO"
        settings = LocalStackSettings(
            port=0,
            ws_port=0,
            runners=0,
            comfyui_url=url,
            state_dir=str(state),
            api_keys=API_KEY,
            ws_token_secret=secrets.token_urlsafe(32),
            # The webhook measurement's receiver listens on 127.0.0.1.
            webhook_allow_local_http=True,
        )
        stack = LocalStack(settings)
        try:
            stack.start()
            # moto answers some concurrent transactions with a 500 and logs a traceback; clients retry.
            logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
            yield Bench(stack, simulator, frames_log, gc_log, calls, posts, gateway)
        finally:
            stack.stop()
            processes.stop(simulator)
