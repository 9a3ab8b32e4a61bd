"""The client's webhook verifier agrees with the Standard Webhooks library, and refuses what it refuses."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from comfy_jobs import InvalidSignature, verify_webhook
from comfy_jobs.cli import main
from standardwebhooks.webhooks import Webhook

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BODY = json.dumps({"id": "msg_1", "type": "job.succeeded", "data": {"job_id": "j"}}).encode()


def _signed(secret: str = SECRET, at: float | None = None, message_id: str = "msg_1") -> dict[str, str]:
    when = datetime.fromtimestamp(at or time.time(), tz=UTC)
    signature = Webhook(secret).sign(message_id, when, BODY.decode())
    return {
        "Webhook-Id": message_id,
        "Webhook-Timestamp": str(int(when.timestamp())),
        "Webhook-Signature": signature,
    }


def test_a_message_signed_by_the_standard_library_verifies_and_yields_the_event() -> None:
    assert verify_webhook(BODY, _signed(), SECRET)["type"] == "job.succeeded"
    # Either signature of a rotation verifies.
    other = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo="
    headers = _signed()
    headers["Webhook-Signature"] = _signed(other)["Webhook-Signature"] + " " + headers["Webhook-Signature"]
    assert verify_webhook(BODY, headers, SECRET)["data"] == {"job_id": "j"}


# Headers are signed when the test runs, not when it is collected: a suite runs longer than the
# five minutes a timestamp is accepted for.
@pytest.mark.parametrize(
    ("body", "headers", "why"),
    [
        (BODY + b" ", lambda: _signed(), "no signature"),
        (BODY, lambda: _signed("whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo="), "no signature"),
        (BODY, lambda: {**_signed(), "Webhook-Id": "msg_2"}, "no signature"),
        (BODY, lambda: _signed(at=time.time() - 3600), "too old"),
        (BODY, lambda: {"Webhook-Id": "msg_1"}, "missing"),
    ],
    ids=["tampered body", "other secret", "other id", "replayed", "unsigned"],
)
def test_tampered_replayed_or_unsigned_messages_are_refused(
    body: bytes, headers: Callable[[], dict[str, str]], why: str
) -> None:
    with pytest.raises(InvalidSignature, match=why):
        verify_webhook(body, headers(), SECRET)


def test_the_cli_verifies_a_saved_webhook_without_calling_the_api(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "body.json").write_bytes(BODY)
    headers = [f"--header={k}:{v}" for k, v in _signed().items()]
    base = [
        "--url",
        "http://127.0.0.1:9",
        "--key",
        "k",
        "webhooks",
        "verify",
        "--body",
        str(tmp_path / "body.json"),
    ]
    assert main([*base, "--secret", SECRET, *headers, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["type"] == "job.succeeded"
    assert main([*base, "--secret", "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=", *headers]) == 1
    assert "not verified" in capsys.readouterr().err
