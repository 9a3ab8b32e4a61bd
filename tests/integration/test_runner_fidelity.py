"""A real runner, in-process, against the simulator and moto: what a real ComfyUI does that it must keep.

Each test submits one job the way the API does (an item in the jobs table, a message on the queue),
lets the runner's own loop take it, and reads the job item back.
"""

from __future__ import annotations

import asyncio
import io
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from gpu_runner.runner import Runner
from local.comfyui_sim import SimulatorServer
from local.comfyui_sim.nodes import NODE_CLASSES
from local.comfyui_sim.nodes.io import SaveImageWebsocket
from shared.aws.jobs import JobStore
from shared.aws.queue import JobQueue
from shared.aws.storage import ArtifactStore
from shared.errors import ServiceUnavailable
from shared.models import Job, JobStatus
from shared.settings import RunnerSettings
from tests.conftest import load_workflow, sampler_workflow

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


class Harness:
    def __init__(self, clients: Any, resources: Any, sim: SimulatorServer) -> None:
        self.sim = sim
        self.settings = RunnerSettings(
            comfyui_url=sim.url,
            jobs_table_name=resources.jobs_table,
            connections_table_name=resources.connections_table,
            jobs_queue_url=resources.queue_url,
            bucket_name=resources.bucket,
            visibility_timeout_seconds=30,
            receive_wait_seconds=1,
            prefetch=0,
        )
        self.runner = Runner(self.settings, clients)
        self.store = JobStore(clients.dynamodb, resources.jobs_table)
        self.queue = JobQueue(clients.sqs, resources.queue_url)
        self.artifacts = ArtifactStore(clients.s3, resources.bucket)

    def submit(self, workflow: dict[str, Any]) -> str:
        now = int(time.time() * 1000)
        job_id = uuid.uuid4().hex
        self.store.create(
            Job(job_id=job_id, owner="owner-a", created_at=now, updated_at=now, workflow=workflow)
        )
        self.queue.send(job_id)
        return job_id

    def start(self) -> None:
        """The runner's own loop, on a thread of its own, until stop()."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self.runner.run(),))
        self._thread.start()

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self.runner.request_stop)
        self._thread.join(30)
        if not self._thread.is_alive():
            self._loop.close()

    def run_until_terminal(self, job_id: str, timeout: float = 30) -> Job:
        deadline = time.monotonic() + timeout
        while True:
            job = self.store.get(job_id)
            assert job is not None
            if job.status.is_terminal or time.monotonic() > deadline:
                return job
            time.sleep(0.05)


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimulatorServer]:
    with SimulatorServer(data_dir=tmp_path / "comfy", step_delay=0.01) as server:
        yield server


@pytest.fixture
def harness(moto_aws: Any, sim: SimulatorServer) -> Iterator[Harness]:
    clients, resources = moto_aws
    running = Harness(clients, resources, sim)
    running.start()
    yield running
    running.stop()


def partly_invalid_graph() -> dict[str, Any]:
    """One valid output (2) and two invalid ones (3, 4): ComfyUI answers 200 and runs only node 2."""
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 1}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "valid"}},
        "3": {"class_type": "SaveImage", "inputs": {"filename_prefix": "no_images"}},
        "4": {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": 99, "sigma": 1.0}},
        "5": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "blurred"}},
    }


def test_a_partly_invalid_graph_fails_naming_every_node_error_and_runs_nothing(
    moto_aws: Any, tmp_path: Path
) -> None:
    # A slow first node: the withdrawal lands while it runs, so no SaveImage ever writes a file.
    with SimulatorServer(data_dir=tmp_path / "slow", node_delay=0.5) as slow:
        clients, resources = moto_aws
        harness = Harness(clients, resources, slow)
        harness.start()
        try:
            job = harness.run_until_terminal(harness.submit(partly_invalid_graph()))
        finally:
            harness.stop()
        assert job.status is JobStatus.FAILED and job.attempt == 1
        assert job.error is not None and job.error.code == "validation_error"
        assert job.outputs == []
        listed = {(e["node_id"], e["node_type"], e["type"]) for e in job.error.details["errors"]}
        assert listed == {
            ("3", "SaveImage", "required_input_missing"),
            ("4", "ImageBlur", "value_bigger_than_max"),
        }
        assert "none was run" in job.error.message and "node 3 (SaveImage)" in job.error.message
        # ComfyUI queued the valid output; the runner withdrew it before it could save anything.
        time.sleep(1.0)
        assert list((tmp_path / "slow" / "output").glob("valid*")) == []


def test_an_unknown_class_type_names_the_node_and_its_type(harness: Harness) -> None:
    workflow = load_workflow("simple_invert_save.json")
    workflow["2"]["class_type"] = "NoSuchNode"
    job = harness.run_until_terminal(harness.submit(workflow))
    assert job.error is not None
    assert (job.error.code, job.error.node_id, job.error.node_type) == ("validation_error", "2", "NoSuchNode")


def test_an_execution_error_reaches_the_client_without_server_paths(harness: Harness) -> None:
    job = harness.run_until_terminal(harness.submit(load_workflow("runtime_error_imagetomask_alpha.json")))
    assert job.error is not None and job.error.code == "execution_error"
    assert (job.error.node_id, job.error.node_type) == ("2", "ImageToMask")
    assert job.error.details is not None and job.error.details["exception_type"] == "IndexError"
    frames = job.error.details["traceback"]
    assert frames and all(frame.startswith('File "') for frame in frames)
    assert str(Path(__file__).parent.parent.parent) not in json.dumps(job.error.model_dump())
    assert any('File "image.py"' in frame for frame in frames), frames


def test_a_huge_refusal_is_stored_bounded_and_the_job_keeps_its_error(harness: Harness) -> None:
    workflow = load_workflow("simple_invert_save.json")
    workflow["1"]["inputs"]["width"] = "9" * 300_000  # echoed back by ComfyUI's node_errors
    job = harness.run_until_terminal(harness.submit(workflow))
    assert job.status is JobStatus.FAILED
    assert job.error is not None and job.error.code == "validation_error" and job.error.node_id == "1"
    assert len(job.error.model_dump_json()) < 8_000
    assert job.error.details is not None and job.error.details["truncated"] is True


def test_a_store_fault_while_failing_a_refused_job_releases_it_for_a_retry(harness: Harness) -> None:
    store = harness.runner.deps.store
    real_finish = store.finish
    faults = []

    def finish_once_unavailable(*args: Any, **kwargs: Any) -> Job | None:
        if not faults:
            faults.append(args)
            raise ServiceUnavailable("DynamoDB throttled the write")
        return real_finish(*args, **kwargs)

    store.finish = finish_once_unavailable  # type: ignore[method-assign]
    workflow = load_workflow("simple_invert_save.json")
    del workflow["3"]["inputs"]["images"]
    job = harness.run_until_terminal(harness.submit(workflow), timeout=20)
    # Released at once, the message came back after its backoff and the next attempt recorded it.
    assert len(faults) == 1
    assert job.status is JobStatus.FAILED and job.attempt == 2
    assert job.error is not None and job.error.node_id == "3"


def test_images_sent_by_save_image_websocket_are_job_outputs(harness: Harness) -> None:
    workflow = {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 8, "height": 4, "batch_size": 2, "color": 0x336699},
        },
        "2": {"class_type": "SaveImageWebsocket", "inputs": {"images": ["1", 0]}},
    }
    job = harness.run_until_terminal(harness.submit(workflow))
    assert job.status is JobStatus.SUCCEEDED, job.error
    assert [(o.node_id, o.filename, o.content_type) for o in job.outputs] == [
        ("2", "websocket_00001_.png", "image/png"),
        ("2", "websocket_00002_.png", "image/png"),
    ]
    image = Image.open(io.BytesIO(harness.artifacts.get_bytes(job.outputs[0].key)))
    assert image.size == (8, 4) and image.convert("RGB").getpixel((0, 0)) == (0x33, 0x66, 0x99)


class ExtraWebsocketSave(SaveImageWebsocket):
    name = "ExtraWebsocketSave"


def test_a_comfyui_restarted_with_other_nodes_is_noticed(
    harness: Harness, sim: SimulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = harness.run_until_terminal(harness.submit(load_workflow("simple_invert_save.json")))
    assert first.status is JobStatus.SUCCEEDED
    assert "ExtraWebsocketSave" not in harness.runner.deps.output_classes
    # The same address, now with one more custom output node.
    port = sim.port
    sim.stop()
    monkeypatch.setitem(NODE_CLASSES, "ExtraWebsocketSave", ExtraWebsocketSave())
    sim.requested_port = port
    sim.start()
    workflow = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
        "2": {"class_type": "ExtraWebsocketSave", "inputs": {"images": ["1", 0]}},
    }
    job = harness.run_until_terminal(harness.submit(workflow))
    assert "ExtraWebsocketSave" in harness.runner.deps.output_classes
    assert job.status is JobStatus.SUCCEEDED and [o.node_id for o in job.outputs] == ["2"]


def test_at_the_deployed_settings_a_short_job_writes_claim_running_and_its_end_only(
    moto_aws: Any, sim: SimulatorServer
) -> None:
    """No lease renewal, no visibility change, no stored progress, one event log entry: a job shorter
    than the lease interval and the progress period (120 s visibility, 15 s) needs none of them."""
    clients, resources = moto_aws
    calls: list[str] = []

    def count(model: Any, params: dict[str, Any], **_: Any) -> None:
        table = params.get("TableName") or params.get("QueueUrl", "").rsplit("/", 1)[-1]
        calls.append(f"{model.name} {table}")

    for client in (clients.dynamodb, clients.sqs):
        client.meta.events.register("before-parameter-build.*.*", count)
    harness = Harness(clients, resources, sim)
    defaults = RunnerSettings.model_fields
    harness.settings = harness.settings.model_copy(
        update={"visibility_timeout_seconds": defaults["visibility_timeout_seconds"].default}
    )
    assert harness.settings.progress_write_seconds == defaults["progress_write_seconds"].default
    harness.runner = Runner(harness.settings, clients)
    job_id = harness.submit(sampler_workflow(20))
    calls.clear()
    harness.start()
    try:
        job = harness.run_until_terminal(job_id)
    finally:
        harness.stop()
    assert job.status is JobStatus.SUCCEEDED, job.error
    writes = [c for c in calls if c.split()[0] in {"UpdateItem", "PutItem", "ChangeMessageVisibility"}]
    queue = resources.queue_url.rsplit("/", 1)[-1]
    # No event-log entry: a job shorter than the progress write interval logs no milestone.
    assert sorted(writes) == [f"UpdateItem {resources.jobs_table}"] * 3  # claim, running, succeeded
    assert calls.count(f"DeleteMessage {queue}") == 1, "received, then deleted: no visibility change"
