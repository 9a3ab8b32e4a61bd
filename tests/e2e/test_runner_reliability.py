"""The runner holds every job to exactly one terminal state and one set of outputs, whatever dies.

Real processes on the local stack with a 2 s visibility timeout, so redeliveries come quickly.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from gpu_runner.job import prompt_id_for
from shared.models import Job, JobStatus
from tests.conftest import load_workflow, sampler_workflow
from tests.e2e.conftest import TERMINAL, Stack, start_stack, stop_stack, submit, wait_for
from tests.e2e.reliability import Simulator, StackAws, Subscriber, runner_log, wait_until


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(
        tmp_path_factory.mktemp("reliability"),
        RUNNERS="0",
        VISIBILITY_TIMEOUT_SECONDS="2",
        MAX_RECEIVE_COUNT="3",
    )
    yield running
    stop_stack(running)


@pytest.fixture
def sim(tmp_path: Path, stack: Stack) -> Iterator[Simulator]:
    simulator = Simulator(tmp_path).start()
    yield simulator
    stack.stop_runners()
    simulator.stop()


@pytest.fixture
def aws(stack: Stack) -> StackAws:
    return StackAws.of(stack)


def run_job(stack: Stack, workflow: dict[str, Any]) -> str:
    receipt = submit(stack.client(), stack.rest_url, workflow)
    assert receipt.status_code == 202
    return str(receipt.json()["job_id"])


def final(stack: Stack, job_id: str, timeout: float = 40) -> dict[str, Any]:
    job = wait_for(stack.client(), f"{stack.rest_url}/v1/jobs/{job_id}", timeout=timeout)
    assert job["status"] in TERMINAL, job
    return job


def test_a_job_much_longer_than_the_visibility_timeout_succeeds_once(
    stack: Stack, sim: Simulator, aws: StackAws
) -> None:
    stack.start_runner(COMFYUI_URL=sim.url)
    job_id = run_job(stack, sampler_workflow(120))  # about 6 s against a 2 s visibility timeout
    job = final(stack, job_id)
    assert (job["status"], job["attempts"]) == ("succeeded", 1)
    assert not sim.ran(job_id, 2)


@pytest.mark.parametrize("step", ["after_claim", "mid_run", "after_upload", "after_finish"])
def test_kill_9_at_each_step_ends_in_one_terminal_state_with_one_set_of_outputs(
    stack: Stack, sim: Simulator, aws: StackAws, step: str
) -> None:
    doomed = stack.start_runner(COMFYUI_URL=sim.url, CRASH_AT_STEP=step)
    job_id = run_job(stack, sampler_workflow(10))
    assert doomed.wait(30) == -signal.SIGKILL
    stack.start_runner(COMFYUI_URL=sim.url)
    job = final(stack, job_id)
    assert job["status"] == "succeeded"
    assert len(job["outputs"]) == 1
    stored = aws.stored_outputs(aws.job(job_id))
    assert stored == [aws.job(job_id).outputs[0].key], "no output of the dead attempt is left behind"
    assert job["attempts"] == (1 if step == "after_finish" else 2)
    time.sleep(2.5)  # one more visibility timeout: nothing comes back to change it
    again = aws.job(job_id)
    assert again.status is JobStatus.SUCCEEDED and again.attempt == job["attempts"]


def test_a_paused_attempt_cannot_write_after_another_took_over(stack: Stack, aws: StackAws) -> None:
    job_id = run_job(stack, load_workflow("simple_invert_save.json"))
    now = int(time.time() * 1000)
    first = aws.store.claim(job_id, "paused-runner", now, now + 100)
    assert first is not None
    time.sleep(0.2)
    second = aws.store.claim(job_id, "new-runner", now + 200, now + 60_000)
    assert second is not None and second.attempt == first.attempt + 1
    # The first attempt wakes up: every late write is refused by the fencing condition.
    assert aws.store.mark_running(job_id, first.attempt, now) is None
    assert aws.store.finish(job_id, first.attempt, JobStatus.SUCCEEDED, now, outputs=[]) is None
    assert aws.store.release(job_id, first.attempt, now) is None


@pytest.mark.parametrize("comfyui", ["one per runner", "one shared"])
def test_a_runner_frozen_past_its_lease_changes_nothing_when_it_wakes(
    stack: Stack, sim: Simulator, aws: StackAws, tmp_path: Path, comfyui: str
) -> None:
    zombie_log = len(stack.runners)
    # Progress stored every second, so the test sees the job under way before it freezes the runner.
    # At DEBUG, so its log says when it is done with the job (a routine line, DEBUG in production).
    zombie = stack.start_runner(
        COMFYUI_URL=sim.url, PREFETCH="0", PROGRESS_WRITE_SECONDS="1", LOG_LEVEL="DEBUG"
    )
    job_id = run_job(stack, sampler_workflow(80))  # about 4 s
    subscriber = Subscriber(stack, job_id)
    wait_until(lambda: aws.job(job_id).progress > 0, 20, "the job to make progress")
    os.kill(zombie.pid, signal.SIGSTOP)
    assert aws.job(job_id).status is JobStatus.RUNNING, "frozen mid-job"
    (tmp_path / "second").mkdir()
    second = sim if comfyui == "one shared" else Simulator(tmp_path / "second").start()
    try:
        stack.start_runner(COMFYUI_URL=second.url, PREFETCH="0")
        job = final(stack, job_id)
        assert (job["status"], job["attempts"]) == ("succeeded", 2)
        outputs = aws.job(job_id).outputs
        recorded = {o["url"]: requests.get(o["url"], timeout=10).content for o in job["outputs"]}
        wait_until(subscriber.terminal_index, 10, "the terminal frame")
        os.kill(zombie.pid, signal.SIGCONT)
        wait_until(
            lambda: any(
                "done with job" in line and job_id in line
                for line in runner_log(stack, zombie_log).splitlines()
            ),
            30,
            "the woken runner to be done with the job",
        )
        time.sleep(1)  # whatever the woken runner still had to post would be out by now
    finally:
        os.kill(zombie.pid, signal.SIGCONT)
        if second is not sim:
            second.stop()
    frames = subscriber.close()
    for url, data in recorded.items():
        answer = requests.get(url, timeout=10)
        assert answer.status_code == 200 and answer.content == data, "the recorded output is intact"
    assert frames[-1]["type"] == "job.status" and frames[-1]["status"] == "succeeded", frames[-3:]
    assert subscriber.terminal_index() == len(frames) - 1, "nothing follows the terminal frame"
    after = aws.job(job_id)
    assert (after.status, after.attempt, after.outputs) == (JobStatus.SUCCEEDED, 2, outputs)


def test_sigterm_mid_job_releases_it_to_another_runner_at_once(
    stack: Stack, sim: Simulator, aws: StackAws
) -> None:
    runner = stack.start_runner(
        COMFYUI_URL=sim.url, STOP_TIMEOUT_SECONDS="0.5", VISIBILITY_TIMEOUT_SECONDS="30"
    )
    job_id = run_job(stack, sampler_workflow(200))
    wait_until(lambda: aws.job(job_id).status is JobStatus.RUNNING, 20, "the job to run")
    runner.send_signal(signal.SIGTERM)
    assert runner.wait(30) == 0
    released = aws.job(job_id)
    assert released.status is JobStatus.RUNNING and released.lease_until is None
    # Visibility 0: the next runner takes it long before the 30 s visibility timeout would allow.
    stack.start_runner(COMFYUI_URL=sim.url, VISIBILITY_TIMEOUT_SECONDS="30")
    job = final(stack, job_id, timeout=25)
    assert (job["status"], job["attempts"]) == ("succeeded", 2)


def test_sigterm_lets_the_job_in_hand_finish_within_the_stop_timeout(
    stack: Stack, sim: Simulator, aws: StackAws
) -> None:
    runner = stack.start_runner(COMFYUI_URL=sim.url, STOP_TIMEOUT_SECONDS="30")
    job_id = run_job(stack, sampler_workflow(40))
    wait_until(lambda: aws.job(job_id).status is JobStatus.RUNNING, 20, "the job to run")
    runner.send_signal(signal.SIGTERM)
    assert runner.wait(30) == 0
    job = aws.job(job_id)
    assert (job.status, job.attempt) == (JobStatus.SUCCEEDED, 1)


def test_a_comfyui_crash_is_survived(stack: Stack, sim: Simulator, aws: StackAws) -> None:
    stack.start_runner(COMFYUI_URL=sim.url, PROGRESS_WRITE_SECONDS="1")
    job_id = run_job(stack, sampler_workflow(200))
    wait_until(lambda: aws.job(job_id).status is JobStatus.RUNNING, 20, "the job to run")
    reached = wait_until(lambda: aws.job(job_id).progress, 20, "some progress")
    sim.kill()
    time.sleep(1)
    sim.start()  # a fresh ComfyUI with an empty queue: the prompt is gone
    seen = [reached]
    while (job := aws.job(job_id)).status is not JobStatus.SUCCEEDED and len(seen) < 2000:
        seen.append(job.progress)
        time.sleep(0.05)
    assert seen == sorted(seen), "the retry starts from the percent the first attempt reached"
    job = final(stack, job_id, timeout=60)
    assert (job["status"], job["attempts"]) == ("succeeded", 2)


def test_a_hung_comfyui_is_survived(stack: Stack, sim: Simulator, aws: StackAws) -> None:
    stack.start_runner(
        COMFYUI_URL=sim.url, COMFYUI_SILENCE_SECONDS="1.5", COMFYUI_REQUEST_TIMEOUT_SECONDS="1"
    )
    job_id = run_job(stack, sampler_workflow(100))
    wait_until(lambda: aws.job(job_id).status is JobStatus.RUNNING, 20, "the job to run")
    sim.freeze()
    wait_until(lambda: aws.job(job_id).lease_until is None, 20, "the runner to release the job")
    sim.thaw()
    job = final(stack, job_id, timeout=60)
    assert (job["status"], job["attempts"]) == ("succeeded", 2)


def test_a_poison_message_ends_in_the_dlq_and_the_job_failed(
    stack: Stack, sim: Simulator, aws: StackAws
) -> None:
    stack.start_runner(COMFYUI_URL=sim.url)
    # Its workflow was never stored: every attempt fails the same way, for ever.
    job_id = enqueue_directly(stack, aws, workflow_s3_key="workflows/none.json")
    job = final(stack, job_id, timeout=60)
    assert job["status"] == "failed"
    assert job["error"]["code"] == "max_attempts_exceeded"


def test_a_duplicate_delivery_runs_the_gpu_once(stack: Stack, sim: Simulator, aws: StackAws) -> None:
    stack.start_runner(COMFYUI_URL=sim.url)
    stack.start_runner(COMFYUI_URL=sim.url)
    job_id = run_job(stack, sampler_workflow(60))
    wait_until(lambda: aws.job(job_id).status is JobStatus.RUNNING, 20, "the job to run")
    aws.send(job_id)  # the same job delivered again while it runs
    job = final(stack, job_id)
    assert (job["status"], job["attempts"]) == ("succeeded", 1)
    aws.send(job_id)  # and once more after it finished
    time.sleep(3)
    assert aws.job(job_id).attempt == 1
    assert sim.ran(job_id, 1) and not sim.ran(job_id, 2)


def test_cancel_while_queued_never_reaches_comfyui(stack: Stack, sim: Simulator, aws: StackAws) -> None:
    client = stack.client()
    job_id = run_job(stack, load_workflow("simple_invert_save.json"))
    canceled = client.delete(f"{stack.rest_url}/v1/jobs/{job_id}", timeout=10)
    assert canceled.status_code == 202 and canceled.json()["status"] == "canceled"
    stack.start_runner(COMFYUI_URL=sim.url)
    wait_until(lambda: _queue_empty(aws), 15, "the message to be consumed")
    assert aws.job(job_id).status is JobStatus.CANCELED
    assert not sim.ran(job_id, 1)


def test_cancel_while_running_interrupts_and_uploads_nothing(
    stack: Stack, sim: Simulator, aws: StackAws
) -> None:
    stack.start_runner(COMFYUI_URL=sim.url)
    client = stack.client()
    job_id = run_job(stack, sampler_workflow(300))
    wait_until(lambda: aws.job(job_id).status is JobStatus.RUNNING, 20, "the job to run")
    answer = client.delete(f"{stack.rest_url}/v1/jobs/{job_id}", timeout=10)
    assert answer.status_code == 202 and answer.json()["cancel_requested"] is True
    job = final(stack, job_id, timeout=20)
    assert job["status"] == "canceled" and job["outputs"] == []
    assert aws.stored_outputs(aws.job(job_id)) == []
    history = requests.get(f"{sim.url}/history", timeout=5).json()
    assert any(
        message[0] == "execution_interrupted"
        for entry in history.values()
        for message in entry["status"]["messages"]
    )
    assert client.delete(f"{stack.rest_url}/v1/jobs/{job_id}", timeout=10).status_code == 409


def test_cancel_racing_completion_ends_in_exactly_one_terminal_state(
    stack: Stack, sim: Simulator, aws: StackAws
) -> None:
    stack.start_runner(COMFYUI_URL=sim.url)
    client = stack.client()
    for delay in (0.0, 0.2, 0.4, 0.6):
        job_id = run_job(stack, sampler_workflow(8))
        time.sleep(delay)
        client.delete(f"{stack.rest_url}/v1/jobs/{job_id}", timeout=10)
        job = final(stack, job_id)
        assert job["status"] in {"canceled", "succeeded"}
        stored = aws.stored_outputs(aws.job(job_id))
        if job["status"] == "succeeded":
            assert len(job["outputs"]) == 1 and len(stored) == 1
        else:
            assert job["outputs"] == []
        time.sleep(0.5)
        assert aws.job(job_id).status.value == job["status"], "a terminal state never changes"


def test_cancelling_a_queued_job_tells_its_subscribers(stack: Stack, aws: StackAws) -> None:
    job_id = run_job(stack, load_workflow("simple_invert_save.json"))  # no runner: it stays queued
    subscriber = Subscriber(stack, job_id)
    wait_until(lambda: subscriber.frames, 10, "the snapshot")
    answer = stack.client().delete(f"{stack.rest_url}/v1/jobs/{job_id}", timeout=10)
    assert answer.status_code == 202 and answer.json()["status"] == "canceled"
    wait_until(subscriber.terminal_index, 10, "the canceled frame")
    frames = subscriber.close()
    assert [(f["type"], f.get("status")) for f in frames[1:]] == [("job.status", "canceled")]


def test_cancel_reaches_comfyui_within_about_a_second_not_a_heartbeat(
    stack: Stack, sim: Simulator, aws: StackAws
) -> None:
    # A 30 s visibility timeout beats every 10 s: only the cancel poll can be this quick.
    stack.start_runner(COMFYUI_URL=sim.url, VISIBILITY_TIMEOUT_SECONDS="30", PREFETCH="1")
    client = stack.client()
    running = run_job(stack, sampler_workflow(140))  # about 7 s
    prefetched = run_job(stack, sampler_workflow(10))
    wait_until(lambda: _pending_in(sim, prefetched), 20, "the second prompt waiting in ComfyUI's queue")
    assert client.delete(f"{stack.rest_url}/v1/jobs/{prefetched}", timeout=10).json()["status"] == "canceled"
    wait_until(lambda: not _pending_in(sim, prefetched), 5, "the prefetched prompt to leave ComfyUI's queue")
    assert aws.job(running).status is JobStatus.RUNNING
    assert client.delete(f"{stack.rest_url}/v1/jobs/{running}", timeout=10).json()["cancel_requested"]
    job = final(stack, running, timeout=20)
    assert (job["status"], job["outputs"]) == ("canceled", []), "canceled before its output was in S3"
    assert aws.stored_outputs(aws.job(running)) == []
    assert not sim.ran(prefetched, 1) or aws.job(prefetched).status is JobStatus.CANCELED


def _pending_in(sim: Simulator, job_id: str) -> bool:
    queue = requests.get(f"{sim.url}/queue", timeout=5).json()
    return prompt_id_for(job_id, 1) in {item[1] for item in queue["queue_pending"]}


def test_a_job_past_its_queue_deadline_expires_without_the_gpu(
    stack: Stack, sim: Simulator, aws: StackAws
) -> None:
    stack.start_runner(COMFYUI_URL=sim.url)
    now = int(time.time() * 1000)
    job_id = enqueue_directly(
        stack,
        aws,
        created_at=now - 60_000,
        deadline=now - 1,
        workflow=load_workflow("simple_invert_save.json"),
    )
    job = final(stack, job_id)
    assert job["status"] == "expired" and job["error"]["code"] == "expired"
    assert not sim.ran(job_id, 1)


def test_a_job_over_its_run_time_limit_is_interrupted_and_fails(stack: Stack, sim: Simulator) -> None:
    stack.start_runner(COMFYUI_URL=sim.url, MAX_RUN_SECONDS="1")
    job = final(stack, run_job(stack, sampler_workflow(200)))
    assert job["status"] == "failed" and job["error"]["code"] == "timeout"
    assert job["outputs"] == []


def test_a_backlog_is_prefetched_into_comfyuis_queue(stack: Stack, sim: Simulator) -> None:
    stack.start_runner(COMFYUI_URL=sim.url, PREFETCH="1")
    job_ids = [run_job(stack, sampler_workflow(60)) for _ in range(3)]

    def pending_while_running() -> bool:
        queue = requests.get(f"{sim.url}/queue", timeout=5).json()
        return bool(queue["queue_running"]) and bool(queue["queue_pending"])

    wait_until(pending_while_running, 20, "a prefetched prompt waiting behind the running one")
    for job_id in job_ids:
        assert final(stack, job_id)["status"] == "succeeded"


def enqueue_directly(stack: Stack, aws: StackAws, **fields: Any) -> str:
    """A job the API would never make, written straight to the table and sent to the queue."""
    now = int(time.time() * 1000)
    job = Job(
        **{
            "job_id": str(uuid.uuid4()),
            "owner": aws_owner(stack),
            "created_at": now,
            "updated_at": now,
            **fields,
        }
    )
    aws.store.create(job)
    aws.send(job.job_id)
    return job.job_id


def aws_owner(stack: Stack) -> str:
    from local.stack import api_key_id

    return api_key_id(stack.endpoints["api_keys"][0])


def _queue_empty(aws: StackAws) -> bool:
    attributes = aws.sqs.get_queue_attributes(
        QueueUrl=aws.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        attributes["ApproximateNumberOfMessages"] == "0"
        and attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
    )
