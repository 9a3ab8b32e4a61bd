"""Parsing of the API's JSON into the client's typed objects, and readable errors, with no network."""

from __future__ import annotations

from typing import Any

import pytest
from comfy_jobs import ErrorEvent, Forbidden, InvalidRequest, Job, NotFound, Progress, Snapshot, StatusChange
from comfy_jobs.client import with_inputs
from comfy_jobs.errors import ApiError, ServerError, ServiceUnavailable, error_for, problem_from_body
from comfy_jobs.models import parse_event

JOB: dict[str, Any] = {
    "job_id": "j1",
    "status": "succeeded",
    "created_at": "2025-01-02T03:04:05.123000Z",
    "updated_at": "2025-01-02T03:04:07+00:00",
    "started_at": "2025-01-02T03:04:05.500000Z",
    "finished_at": "2025-01-02T03:04:07Z",
    "deadline": None,
    "attempts": 1,
    "progress": 100.0,
    "cancel_requested": False,
    "error": None,
    "outputs": [
        {
            "node_id": "9",
            "filename": "a.png",
            "content_type": "image/png",
            "size": 10,
            "kind": "output",
            "url": "http://s3/a.png",
        }
    ],
    "metadata": {"k": 1},
}


def test_a_job_parses_with_times_outputs_and_the_raw_document() -> None:
    job = Job.from_dict(JOB)
    assert job.is_terminal and job.outputs[0].filename == "a.png" and job.metadata == {"k": 1}
    assert job.started_at and job.finished_at and (job.finished_at - job.started_at).total_seconds() == 1.5
    assert job.raw == JOB and job.error is None


def test_a_failed_job_error_reads_well() -> None:
    job = Job.from_dict(
        {**JOB, "status": "failed", "error": {"code": "execution_error", "message": "boom", "node_id": "2",
                                               "node_type": "ImageToMask"}}
    )  # fmt: skip
    assert str(job.error) == "execution_error: boom at node 2 (ImageToMask)"


def test_frames_parse_into_events_and_unknown_ones_are_skipped() -> None:
    assert isinstance(parse_event({"type": "job.snapshot", "job": JOB, "ts": 1}), Snapshot)
    progress = parse_event(
        {"type": "job.progress", "job_id": "j1", "node_id": "3", "node_type": "KSampler", "value": 2,
         "max": 20, "percent": 40.5, "ts": 5}
    )  # fmt: skip
    assert progress == Progress("j1", "3", "KSampler", 2.0, 20.0, 40.5, 5)
    status = parse_event({"type": "job.status", "job_id": "j1", "status": "succeeded", "ts": 9,
                          "outputs": JOB["outputs"], "error": None})  # fmt: skip
    assert isinstance(status, StatusChange) and status.is_terminal and status.outputs[0].size == 10
    assert parse_event({"type": "error", "code": "not_found", "message": "no"}) == ErrorEvent(
        "not_found", "no"
    )
    assert parse_event({"type": "pong", "ts": 1}) is None
    assert parse_event({"type": "job.something_new"}) is None


def test_a_problem_document_prints_its_title_detail_and_each_field_error() -> None:
    problem = {
        "type": "urn:comfy-api-service:problem:invalid-workflow",
        "title": "The workflow is not valid",
        "status": 422,
        "detail": "2 faults",
        "errors": [
            {"pointer": "/workflow/1/inputs/images", "detail": "links to node 9, which does not exist",
             "node_id": "1", "input": "images"},
            {"pointer": "/workflow/2", "detail": "no class_type"},
        ],
    }  # fmt: skip
    error = error_for(422, problem)
    assert isinstance(error, InvalidRequest) and error.title == "The workflow is not valid"
    assert str(error).splitlines() == [
        "422 The workflow is not valid: 2 faults",
        "  /workflow/1/inputs/images (node 1, input images): links to node 9, which does not exist",
        "  /workflow/2: no class_type",
    ]


def test_the_gateways_forbidden_becomes_a_readable_forbidden() -> None:
    error = error_for(403, problem_from_body(403, {"message": "Forbidden"}))
    assert isinstance(error, Forbidden)
    assert str(error) == "403 Forbidden: the API key is missing or not valid"


@pytest.mark.parametrize(
    ("status", "kind"),
    [(404, NotFound), (400, InvalidRequest), (413, InvalidRequest), (503, ServiceUnavailable),
     (502, ServerError), (418, ApiError)],
)  # fmt: skip
def test_statuses_map_to_exception_classes(status: int, kind: type[ApiError]) -> None:
    error = error_for(status, problem_from_body(status, None, "<html>oops</html>", "Reason"))
    assert type(error) is kind and error.status == status
    assert str(error) == f"{status} Reason: <html>oops</html>"


def test_uploaded_refs_go_into_a_named_node_input_or_every_literal_input_of_that_name() -> None:
    workflow = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "old.png"}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
    }
    assert with_inputs(workflow, {"image": "upload://u"})["1"]["inputs"]["image"] == "upload://u"
    assert with_inputs(workflow, {"image": "upload://u"})["2"]["inputs"]["image"] == ["1", 0], "links stay"
    assert with_inputs(workflow, {"2.image": "upload://u"})["2"]["inputs"]["image"] == "upload://u"
    assert workflow["1"]["inputs"]["image"] == "old.png", "the caller's workflow is not changed"
    with pytest.raises(ValueError, match="no node"):
        with_inputs(workflow, {"7.image": "upload://u"})
    with pytest.raises(ValueError, match="no node in the workflow"):
        with_inputs(workflow, {"mask": "upload://u"})
