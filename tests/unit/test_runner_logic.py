"""The runner's pure parts: progress, outputs, outcomes from history, prompt ids, errors."""

from __future__ import annotations

from gpu_runner.comfy import ComfyRejected
from gpu_runner.follow import OutcomeKind, outcome_from_history
from gpu_runner.job import backoff_seconds, prompt_id_for
from gpu_runner.job_errors import execution_error, rejection_error
from gpu_runner.outputs import ProducedFile, ProducedText, list_outputs
from gpu_runner.progress import ProgressTracker, nodes_that_run

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


def test_validation_errors_name_node_and_type() -> None:
    rejected = ComfyRejected(
        {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation"},
        {
            "3": {
                "errors": [
                    {
                        "type": "required_input_missing",
                        "message": "Required input is missing",
                        "details": "images",
                    }
                ],
                "class_type": "SaveImage",
            }
        },
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
