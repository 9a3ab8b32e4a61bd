"""The context object Lambda hands a handler, for the handlers the local stack invokes itself."""

from __future__ import annotations

import uuid


class LocalLambdaContext:
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    log_stream_name = "local"

    def __init__(self, name: str, timeout_ms: int) -> None:
        self.function_name = name
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
        self.log_group_name = f"/aws/lambda/{name}"
        self.aws_request_id = str(uuid.uuid4())
        self._timeout_ms = timeout_ms

    def get_remaining_time_in_millis(self) -> int:
        return self._timeout_ms
