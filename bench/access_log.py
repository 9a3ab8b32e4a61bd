"""How many bytes an API Gateway access log line takes, from the stage's own format in the template.

API Gateway fills each ``$context`` variable of the format for every request; a value it does not have
is written ``-``. The values below are those of the reference job's requests (a UUID request id, a
job route's path, an unsampled trace); the line is what the format makes of them.
"""

from __future__ import annotations

import re
from typing import Any

TYPICAL_VALUES = {
    "$context.requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
    "$context.requestTime": "02/Dec/2026:15:23:34 +0000",
    "$context.requestTimeEpoch": "1796225014123",
    "$context.identity.sourceIp": "203.0.113.117",
    "$context.identity.apiKeyId": "a1b2c3d4e5",
    "$context.httpMethod": "POST",
    "$context.path": "/prod/v1/jobs/0f6c2e9b8d7a4c1e9b2f3a4d5c6e7f80",
    "$context.status": "202",
    "$context.responseLength": "1024",
    "$context.integrationLatency": "120",
    "$context.eventType": "MESSAGE",
    "$context.routeKey": "subscribe",
    "$context.connectionId": "L0SM9cOFvHcCIhw=",
}
# Anything else (an error message, a trace id X-Ray did not sample): API Gateway's empty value.
EMPTY = "-"
_VARIABLE = re.compile(r"\$context\.[A-Za-z0-9_.]+[A-Za-z0-9_]")


def line_bytes(log_format: str) -> int:
    """The bytes of one line the format writes for a typical request of the reference job."""
    line = _VARIABLE.sub(lambda m: TYPICAL_VALUES.get(m.group(0), EMPTY), log_format)
    return len(line.encode())


def stage_formats(template: dict[str, Any]) -> dict[str, str]:
    """The access log format of each API's stage: ``rest`` and ``websocket``."""
    formats = {}
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::ApiGateway::Stage" and "AccessLogSetting" in props:
            formats["rest"] = props["AccessLogSetting"]["Format"]
        elif resource["Type"] == "AWS::ApiGatewayV2::Stage" and "AccessLogSettings" in props:
            formats["websocket"] = props["AccessLogSettings"]["Format"]
    return formats
