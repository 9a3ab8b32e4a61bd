"""The local stack's principals, made from this template: each process may make exactly its calls.

The e2e suite runs every process under these principals; here the grants that matter are pinned on the
template itself, resolved as the local stack resolves them.
"""

from __future__ import annotations

import pytest

from local.iam.account import LocalIam
from local.iam.template import LAMBDA_HANDLERS, RUNNER, LocalAccount
from local.stack import ACCOUNT_ID, REGION, WEBSOCKET_API_ID, local_bucket_name
from shared.names import BUCKET_NAME, CONNECTIONS_TABLE, JOBS_TABLE, input_key, output_key
from tests.infra.conftest import Synth

pytestmark = pytest.mark.infra

BUCKET = f"arn:aws:s3:::{BUCKET_NAME}"
JOBS = f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{JOBS_TABLE.default_name}"
OUTPUT = f"{BUCKET}/{output_key('owner', 'job', 1, '9', 'a.png')}"
INPUT = f"{BUCKET}/{input_key('owner', 'upload')}"
CONNECTIONS = f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{CONNECTIONS_TABLE.default_name}"


@pytest.fixture(scope="module")
def iam(synth: Synth) -> LocalIam:
    account = LocalAccount(ACCOUNT_ID, REGION, WEBSOCKET_API_ID, local_bucket_name)
    return LocalIam.from_template(synth.json, account)


def test_every_process_runs_as_a_role_of_the_template(iam: LocalIam) -> None:
    assert set(iam.by_process) == {*LAMBDA_HANDLERS, RUNNER}


def test_the_api_can_check_an_upload_and_tell_a_missing_one(iam: LocalIam) -> None:
    api = iam.principal("api")
    assert api.allows("s3:GetObject", INPUT), "HeadObject on the upload"
    assert api.allows("s3:ListBucket", BUCKET), "a missing upload is a 404, not a 403"
    assert not api.allows("s3:DeleteObject", INPUT)


def test_the_runner_can_clear_old_outputs_and_presign_its_links(iam: LocalIam) -> None:
    runner = iam.principal(RUNNER)
    assert runner.allows("s3:ListBucket", BUCKET, {"s3:prefix": "outputs/owner/job/"})
    assert runner.allows("s3:DeleteObject", OUTPUT)
    assert runner.allows("s3:GetObject", OUTPUT), "a presigned link is only as good as its signer's grant"
    assert not runner.allows("s3:PutObject", INPUT)


def test_grants_stop_at_their_tables(iam: LocalIam) -> None:
    runner = iam.principal(RUNNER)
    assert runner.allows("dynamodb:UpdateItem", JOBS)
    assert not iam.principal("dlq").allows("dynamodb:PutItem", JOBS)
    assert not iam.principal("ws_authorizer").allows("dynamodb:GetItem", JOBS)


def test_only_the_api_and_the_routes_write_to_the_connections_table(iam: LocalIam) -> None:
    # The routes write subscriptions; the API writes a running job's cancel mark (docs/cancel.md).
    writers = {p for p in iam.by_process if iam.principal(p).allows("dynamodb:PutItem", CONNECTIONS)}
    assert writers == {"api", "ws_routes"}
    assert iam.principal("api").allows("dynamodb:DeleteItem", CONNECTIONS), "a mark whose cancel failed"
    assert not iam.principal("api").allows("dynamodb:UpdateItem", CONNECTIONS)


def test_only_the_posting_processes_may_manage_connections(iam: LocalIam) -> None:
    connection = f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{WEBSOCKET_API_ID}/{iam.websocket_stage}/POST/@connections/c="
    posting = {
        p for p in iam.by_process if iam.principal(p).allows("execute-api:ManageConnections", connection)
    }
    # The API tells a canceled queued job's subscribers itself.
    assert posting == {"api", "ws_routes", "dlq", RUNNER}
