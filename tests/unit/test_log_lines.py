"""What one log line of a function holds: billed by the byte, it leaves out what its log group says."""

from __future__ import annotations

import json
import logging

import pytest

from functions.observability import TRACE_HEADER, CompactFormatter


def line(formatter: CompactFormatter) -> dict[str, object]:
    formatter.append_keys(
        function_name="ComfyApiService-WsRoutesFunction72FD3762-AbCdEf123456",
        function_arn="arn:aws:lambda:us-east-1:123456789012:function:ComfyApiService-WsRoutes",
        function_memory_size=256,
        function_request_id="5ac69062-cea2-489c-a379-13141233aa95",
        job_id="j1",
    )
    record = logging.LogRecord("service", logging.WARNING, "handler.py", 7, "gone", None, None)
    return dict(json.loads(formatter.format(record)))


def test_a_line_keeps_its_job_and_request_but_not_what_the_log_group_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TRACE_HEADER, "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f;Sampled=0")
    unsampled = line(CompactFormatter())
    assert unsampled["job_id"] == "j1" and unsampled["message"] == "gone" and unsampled["level"] == "WARNING"
    assert unsampled["function_request_id"] == "5ac69062-cea2-489c-a379-13141233aa95"
    assert not {"function_name", "function_arn", "function_memory_size", "xray_trace_id"} & set(unsampled)
    monkeypatch.setenv(TRACE_HEADER, "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f;Sampled=1")
    assert line(CompactFormatter())["xray_trace_id"] == "1-5759e988-bd862e3fe1be46a994272793"
