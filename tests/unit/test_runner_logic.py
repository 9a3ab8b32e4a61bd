"""The runner's pure parts: progress, outputs, outcomes from history, prompt ids, errors."""

from __future__ import annotations

import json
import struct

import pytest

from gpu_runner.comfy import ComfyRejected
from gpu_runner.comfy_binary import MalformedFrame, SentImage, SentText, decode
from gpu_runner.follow import OutcomeKind, outcome_from_history
from gpu_runner.job import backoff_seconds, prompt_id_for
from gpu_runner.job_errors import execution_error, rejection_error, short_traceback, without_paths
from gpu_runner.outputs import ProducedFile, ProducedText, list_outputs
from gpu_runner.progress import ProgressTracker, nodes_that_run
from shared.error_size import bounded
from shared.models import ErrorCode, JobError

GRAPH = {
    "1": {"class_type": "EmptyImage", "inputs": {}},
    "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0]}},
    "9": {"class_type": "ImageBlur", "inputs": {"image": ["1", 0]}},
}


def test_only_output_nodes_and_their_ancestors_run() -> None:
    assert nodes_that_run(GRAPH, {"SaveImage"}) == {"1", "2", "3"}
    assert nodes_that_run(GRAPH, None) == {"1", "2", "3", "9"}


def test_progress_counts_nodes_and_steps_and_never_goes_back() -> None:
    tracker = ProgressTracker({"1", "2", "3"})
    tracker.executing("1")
    assert tracker.percent == 0
    tracker.executing("2")
    assert round(tracker.percent) == 33
    tracker.progress("2", 5, 10)
    assert round(tracker.percent) == 50
    tracker.progress("2", 1, 10)  # a late, lower tick must not move it back
    assert round(tracker.percent) == 50
    tracker.executed("3")
    assert tracker.percent < 100  # only success says 100


def test_a_later_attempt_starts_from_the_percent_the_job_reached() -> None:
    tracker = ProgressTracker({"1", "2", "3", "4"}, 62.5)
    assert tracker.executing("1") == 62.5  # the retry repeats node 1: the job does not go back
    assert tracker.executed("1") == 62.5
    tracker.executed("2")
    assert tracker.executed("3") == 75.0


def test_cached_nodes_do_not_count() -> None:
    tracker = ProgressTracker({"1", "2", "3"})
    tracker.cached(["1", "2"])
    tracker.progress("3", 1, 2)
    assert tracker.percent == 50


def test_outputs_of_every_kind_are_listed() -> None:
    produced = list_outputs(
        {
            "3": {"images": [{"filename": "a_00001_.png", "subfolder": "", "type": "output"}]},
            "5": {"text": ["256"]},
            "7": {
                "gifs": [{"filename": "clip.mp4", "subfolder": "vid", "type": "output"}],
                "animated": [True],
            },
        }
    )
    assert produced == [
        ProducedFile("3", "a_00001_.png", "", "output"),
        ProducedText("5", 0, "256"),
        ProducedFile("7", "clip.mp4", "vid", "output"),
    ]


def test_outcome_from_history_tells_interrupt_from_error() -> None:
    interrupted = {
        "status": {
            "status_str": "error",
            "completed": False,
            "messages": [
                ["execution_start", {"timestamp": 1}],
                ["execution_interrupted", {"node_id": "12", "timestamp": 5}],
            ],
        },
        "outputs": {},
    }
    assert outcome_from_history(interrupted).kind is OutcomeKind.INTERRUPTED
    ok = {
        "status": {"status_str": "success", "messages": [["execution_success", {"timestamp": 9}]]},
        "outputs": {},
    }
    assert outcome_from_history(ok).kind is OutcomeKind.SUCCESS


def test_prompt_ids_are_stable_per_attempt() -> None:
    assert prompt_id_for("job", 1) == prompt_id_for("job", 1)
    assert prompt_id_for("job", 1) != prompt_id_for("job", 2)


def test_backoff_grows_and_is_capped() -> None:
    assert [backoff_seconds(n) for n in (1, 2, 3)] == [2, 4, 8]
    assert backoff_seconds(50) == 300


MISSING_IMAGES = {
    "errors": [
        {"type": "required_input_missing", "message": "Required input is missing", "details": "images"}
    ],
    "class_type": "SaveImage",
}


def test_validation_errors_name_node_and_type() -> None:
    rejected = ComfyRejected(
        {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation"},
        {"3": MISSING_IMAGES},
    )
    error = rejection_error(rejected, {})
    assert (error.node_id, error.node_type) == ("3", "SaveImage")
    assert error.message == "Required input is missing: images"


def test_unknown_class_errors_name_the_node_from_details() -> None:
    rejected = ComfyRejected(
        {
            "type": "invalid_prompt",
            "message": "Cannot execute because node Nope does not exist.",
            "details": "Node ID '#4'",
        },
        {},
    )
    assert rejection_error(rejected, {}).node_id == "4"


def test_execution_errors_carry_node_and_message() -> None:
    error = execution_error(
        {
            "node_id": "2",
            "node_type": "ImageToMask",
            "exception_message": "index 3 is out of bounds\n",
            "exception_type": "IndexError",
        },
        "job-1",
    )
    assert (error.node_id, error.node_type, error.message) == ("2", "ImageToMask", "index 3 is out of bounds")


def test_server_paths_are_cut_to_file_names() -> None:
    message = (
        "[Errno 2] No such file or directory: '/opt/ComfyUI/input/uploads/a.png' "
        "(see C:\\ComfyUI\\custom_nodes\\pack\\nodes.py; docs at https://example.com/a/b)"
    )
    assert without_paths(message) == (
        "[Errno 2] No such file or directory: 'a.png' (see nodes.py; docs at https://example.com/a/b)"
    )
    frames = [
        '  File "/work/comfyui/execution.py", line 496, in execute\n    output_data = await get(...)\n',
        '  File "C:\\ComfyUI\\comfy_extras\\nodes_mask.py", line 137, in image_to_mask\n    mask = image[...]\n',
    ]
    assert short_traceback(frames) == [
        'File "execution.py", line 496, in execute',
        'File "nodes_mask.py", line 137, in image_to_mask',
    ]


def test_every_node_error_is_listed_and_an_unknown_node_gets_its_type_from_the_graph() -> None:
    rejected = ComfyRejected(
        {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation"},
        {
            "3": MISSING_IMAGES,
            "5": {
                "errors": [
                    {
                        "type": "value_bigger_than_max",
                        "message": "Value 99 bigger than max of 31",
                        "details": "blur_radius",
                    }
                ],
                "class_type": "ImageBlur",
            },
        },
        partial=True,
    )
    error = rejection_error(rejected, GRAPH)
    assert [(e["node_id"], e["node_type"], e["type"]) for e in error.details["errors"]] == [
        ("3", "SaveImage", "required_input_missing"),
        ("5", "ImageBlur", "value_bigger_than_max"),
    ]
    assert "none was run" in error.message and "node 5 (ImageBlur)" in error.message
    unknown = ComfyRejected(
        {
            "type": "invalid_prompt",
            "message": "Cannot execute because node Nope does not exist.",
            "details": "Node ID '#9'",
        },
        {},
    )
    assert (rejection_error(unknown, GRAPH).node_id, rejection_error(unknown, GRAPH).node_type) == (
        "9",
        "ImageBlur",
    )


def test_stored_errors_are_bounded_and_say_so() -> None:
    huge = JobError(
        code=ErrorCode.VALIDATION_ERROR,
        message="x" * 50_000,
        details={
            "node_errors": {"1": {"extra_info": {"received_value": "9" * 300_000}}},
            "list": list(range(5000)),
        },
    )
    stored = bounded(huge)
    assert len(stored.model_dump_json()) < 8_000
    assert stored.details is not None and stored.details["truncated"] is True
    assert stored.message.endswith("more characters cut]")
    small = JobError(code=ErrorCode.EXECUTION_ERROR, message="fine", details={"a": 1})
    assert bounded(small) is small


def test_binary_frames_are_decoded() -> None:
    header = json.dumps({"node_id": "3", "prompt_id": "p", "image_type": "image/png"}).encode()
    image = decode(struct.pack(">II", 4, len(header)) + header + b"PNG")
    assert image == SentImage("p", "3", "image/png", b"PNG")
    assert decode(struct.pack(">II", 1, 1) + b"JPG") == SentImage(None, None, "image/jpeg", b"JPG")
    assert decode(struct.pack(">II", 3, 1) + b"4" + b"hello") == SentText("4", "hello")
    with pytest.raises(MalformedFrame):
        decode(struct.pack(">II", 4, 99) + b"{")
