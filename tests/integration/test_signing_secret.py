"""The signing secret in Secrets Manager (moto): rotation costs no 401 and no invalid cursor, and whatever
string arrives as a cursor or a token is refused cleanly (422 naming ``cursor``, 401), never a 500."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from local.apigw.events import ApiInfo, WsPeer, now_ms, ws_authorizer_event
from shared.aws.clients import AwsClients
from shared.secrets import SigningSecret
from shared.ws_tokens import InvalidToken, issue_token, verify_token
from tests.integration.conftest import ApiCall, FakeLambdaContext

pytestmark = pytest.mark.integration

# Not ASCII, too long, bad base64 padding, no signature: each was a 500 or could be.
MALFORMED = ["é", "abc.dé", "\u2028.x", "😀" * 10, "a" * 5000, "abc.def=", "====.====", "ab", "."]


@pytest.fixture
def secret_arn(moto_aws: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """The signing secret as the stack deploys it: an ARN, no literal."""
    clients, _ = moto_aws
    arn = str(clients.secretsmanager.create_secret(Name="ws-token", SecretString="version-1")["ARN"])
    monkeypatch.delenv("WS_TOKEN_SECRET", raising=False)
    monkeypatch.setenv("WS_TOKEN_SECRET_ARN", arn)
    monkeypatch.setenv("WEBSOCKET_URL", "ws://127.0.0.1:1/local")
    return arn


def rotate(clients: AwsClients, arn: str, value: str) -> None:
    """What the rotation runbook does: the new value becomes AWSCURRENT, the old one AWSPREVIOUS."""
    clients.secretsmanager.put_secret_value(SecretId=arn, SecretString=value)


@pytest.fixture
def authorize() -> Iterator[Any]:
    from functions.ws import authorizer

    def call(token: str) -> dict[str, Any]:
        peer = WsPeer("Conn0=", now_ms(), "127.0.0.1", "test", "127.0.0.1")
        event = ws_authorizer_event(
            ApiInfo(), peer, [], [("token", token)], request_id=uuid.uuid4().hex, epoch_ms=now_ms()
        )
        return dict(authorizer.handler(event, FakeLambdaContext()))

    authorizer._signing.cache_clear()
    yield call
    authorizer._signing.cache_clear()


def new_container() -> None:
    """A cold start: nothing cached from before."""
    from functions.api import context
    from functions.ws import authorizer

    context.default_context.cache_clear()
    authorizer._signing.cache_clear()


def test_a_cursor_signed_with_the_previous_version_still_reads_the_next_page(
    api: ApiCall, moto_aws: Any, secret_arn: str, simple_workflow: dict[str, Any]
) -> None:
    for _ in range(3):
        assert api("POST", "/v1/jobs", {"workflow": simple_workflow}).status == 202
    first = api("GET", "/v1/jobs?limit=1").body
    rotate(moto_aws[0], secret_arn, "version-2")
    new_container()

    second = api("GET", f"/v1/jobs?limit=1&cursor={first['next_cursor']}")

    assert second.status == 200
    assert second.body["items"][0]["job_id"] != first["items"][0]["job_id"]


def test_a_cursor_signed_with_neither_version_is_a_422(
    api: ApiCall, moto_aws: Any, secret_arn: str, simple_workflow: dict[str, Any]
) -> None:
    for _ in range(2):
        api("POST", "/v1/jobs", {"workflow": simple_workflow})
    cursor = api("GET", "/v1/jobs?limit=1").body["next_cursor"]
    rotate(moto_aws[0], secret_arn, "version-2")
    rotate(moto_aws[0], secret_arn, "version-3")
    new_container()

    refused = api("GET", f"/v1/jobs?limit=1&cursor={cursor}")

    assert refused.status == 422
    assert refused.body["errors"][0]["pointer"] == "query:cursor"


def test_a_malformed_cursor_is_a_422_naming_the_cursor(api: ApiCall) -> None:
    for cursor in MALFORMED:
        answer = api("GET", f"/v1/jobs?cursor={cursor}")
        assert answer.status == 422, (cursor, answer.body)
        assert "cursor" in str(answer.body["errors"]), cursor


def test_a_token_signed_with_the_previous_version_still_connects(
    moto_aws: Any, secret_arn: str, authorize: Any
) -> None:
    token, _ = issue_token("version-1", "tenant-a", int(time.time()), 300)
    rotate(moto_aws[0], secret_arn, "version-2")
    new_container()

    allowed = authorize(token)

    assert allowed["principalId"] == "tenant-a"
    assert allowed["policyDocument"]["Statement"][0]["Effect"] == "Allow"


def test_a_token_signed_with_neither_version_is_refused(
    moto_aws: Any, secret_arn: str, authorize: Any
) -> None:
    token, _ = issue_token("version-1", "tenant-a", int(time.time()), 300)
    rotate(moto_aws[0], secret_arn, "version-2")
    rotate(moto_aws[0], secret_arn, "version-3")
    new_container()

    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorize(token)


def test_a_warm_function_learns_the_new_version_from_the_first_token_signed_with_it(
    moto_aws: Any, secret_arn: str
) -> None:
    clients = moto_aws[0]
    warm = SigningSecret("", secret_arn, lambda: clients.secretsmanager, refresh_interval_s=0)
    assert warm.keys().current == "version-1"  # cached before the rotation
    rotate(clients, secret_arn, "version-2")
    fresh = SigningSecret("", secret_arn, lambda: clients.secretsmanager)
    token, _ = issue_token(fresh.keys().current, "tenant-a", int(time.time()), 300)

    claims = warm.verify(lambda accepted: verify_token(accepted, token, int(time.time())), InvalidToken)

    assert claims.owner == "tenant-a"


def test_a_malformed_token_is_refused_as_unauthorized(
    authorize: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WS_TOKEN_SECRET", "s")
    for token in MALFORMED:
        with pytest.raises(Exception, match=r"^Unauthorized$"):
            authorize(token)


def test_an_unreadable_secret_is_a_503_not_a_500(
    api: ApiCall, moto_aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WS_TOKEN_SECRET", raising=False)
    monkeypatch.setenv(
        "WS_TOKEN_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:gone-AbCdEf"
    )
    monkeypatch.setenv("WEBSOCKET_URL", "ws://127.0.0.1:1/local")

    answer = api("POST", "/v1/ws-tokens")

    assert answer.status == 503, answer.body
    assert "ResourceNotFoundException" in answer.body["detail"]
