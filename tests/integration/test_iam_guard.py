"""moto behind the IAM guard: what a principal's policies do not allow fails as AWS fails it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
from botocore.exceptions import ClientError

from local import processes
from local.iam.account import HARNESS_KEY, GuardedMotoServer, LocalIam
from local.iam.guard import Credential, Identities
from local.iam.policy import Principal, statements_of
from local.iam.template import LocalAccount
from shared.aws.clients import AwsClients
from shared.aws.storage import ArtifactStore

ACCOUNT = LocalAccount("123456789012", "us-east-1", "local0wsap", lambda name: name)
BUCKET = "artifacts"
JOBS_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/jobs"
STATEMENTS: dict[str, list[dict[str, Any]]] = {
    # Reads jobs and outputs; may not list the bucket.
    "reader": [
        {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": JOBS_ARN},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/outputs/*"},
    ],
    # Also lists the bucket, writes inputs and posts to WebSocket connections.
    "lister": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/outputs/*"},
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{BUCKET}/inputs/*"},
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{BUCKET}"},
        {
            "Effect": "Allow",
            "Action": "execute-api:ManageConnections",
            "Resource": "arn:aws:execute-api:us-east-1:123456789012:local0wsap/prod/*/@connections/*",
        },
    ],
}


@pytest.fixture(scope="module")
def iam() -> Iterator[tuple[LocalIam, str]]:
    identities = Identities()
    identities.add(Credential(HARNESS_KEY, HARNESS_KEY, Principal("harness", "root", (), unrestricted=True)))
    by_process = {}
    for name, statements in STATEMENTS.items():
        credential = Credential(
            f"AKIA{name.upper():0<16}",
            f"secret-{name}",
            Principal(name, name, statements_of([{"Statement": statements}])),
        )
        identities.add(credential)
        by_process[name] = credential
    local_iam = LocalIam(ACCOUNT, identities, by_process, "prod")
    port = processes.free_port()
    server = GuardedMotoServer(local_iam, "127.0.0.1", port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    admin = client(endpoint, boto3.session.Session(HARNESS_KEY, HARNESS_KEY, region_name="us-east-1"))
    admin.s3.create_bucket(Bucket=BUCKET)
    admin.s3.put_object(Bucket=BUCKET, Key="outputs/o/j/1/a.png", Body=b"png")
    for table in ("jobs", "other"):
        admin.dynamodb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    yield local_iam, endpoint
    server.stop()


def client(endpoint: str, session: boto3.session.Session) -> AwsClients:
    return AwsClients(session, endpoint_url=endpoint)


_clients: dict[tuple[str, str], AwsClients] = {}


def as_(iam: tuple[LocalIam, str], name: str) -> AwsClients:
    """Clients signing as one principal, made once (making boto3 clients is the slow part here)."""
    if (iam[1], name) not in _clients:
        _clients[iam[1], name] = client(iam[1], iam[0].session(name))
    return _clients[iam[1], name]


def error_code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def test_a_table_grant_does_not_reach_another_table(iam: tuple[LocalIam, str]) -> None:
    reader = as_(iam, "reader").dynamodb
    reader.get_item(TableName="jobs", Key={"pk": {"S": "x"}})
    with pytest.raises(ClientError) as denied:
        reader.get_item(TableName="other", Key={"pk": {"S": "x"}})
    assert error_code(denied) == "AccessDeniedException"
    assert "dynamodb:GetItem" in str(denied.value) and "table/other" in str(denied.value)
    with pytest.raises(ClientError) as denied:
        reader.put_item(TableName="jobs", Item={"pk": {"S": "x"}})
    assert error_code(denied) == "AccessDeniedException"


def test_a_missing_object_is_403_without_list_bucket_and_404_with_it(iam: tuple[LocalIam, str]) -> None:
    with pytest.raises(ClientError) as denied:
        as_(iam, "reader").s3.head_object(Bucket=BUCKET, Key="outputs/o/j/1/none.png")
    assert error_code(denied) == "403"
    with pytest.raises(ClientError) as missing:
        as_(iam, "lister").s3.head_object(Bucket=BUCKET, Key="outputs/o/j/1/none.png")
    assert error_code(missing) == "404"
    with pytest.raises(ClientError) as listing:
        as_(iam, "reader").s3.list_objects_v2(Bucket=BUCKET, Prefix="outputs/")
    assert error_code(listing) == "AccessDenied"


def test_a_presigned_url_carries_its_signers_permissions_and_expiry(iam: tuple[LocalIam, str]) -> None:
    key = "outputs/o/j/1/a.png"
    assert (
        requests.get(ArtifactStore(as_(iam, "reader").s3, BUCKET).presign_get(key, 60), timeout=5).content
        == b"png"
    )
    # Signed by a principal that may not read it: every link is a 403, however valid the signature.
    other = ArtifactStore(as_(iam, "reader").s3, BUCKET).presign_get("inputs/o/u", 60)
    assert requests.get(other, timeout=5).status_code == 403
    # Signed in 2020 for an hour (the signature goes unchecked; the expiry does not).
    expired = re.sub(
        r"X-Amz-Date=\d{8}",
        "X-Amz-Date=20200101",
        ArtifactStore(as_(iam, "reader").s3, BUCKET).presign_get(key, 3600),
    )
    assert requests.get(expired, timeout=5).status_code == 403
    assert requests.get(f"{iam[1]}/{BUCKET}/{key}", timeout=5).status_code == 403, "unsigned"
    malformed = (
        ArtifactStore(as_(iam, "reader").s3, BUCKET)
        .presign_get(key, 60)
        .replace("X-Amz-Expires=", "X-Amz-Expires=x")
    )
    assert requests.get(malformed, timeout=5).status_code == 400


def test_an_unknown_access_key_is_refused(iam: tuple[LocalIam, str]) -> None:
    stranger = client(iam[1], boto3.session.Session("AKIASTRANGER", "x", region_name="us-east-1"))
    with pytest.raises(ClientError) as refused:
        stranger.dynamodb.get_item(TableName="jobs", Key={"pk": {"S": "x"}})
    assert error_code(refused) == "UnrecognizedClientException"


def test_a_form_upload_is_held_to_its_signed_policy(iam: tuple[LocalIam, str]) -> None:
    store = ArtifactStore(as_(iam, "lister").s3, BUCKET)
    url, fields = store.presign_post("inputs/o/u1", "image/png", 100, 60)
    ok = requests.post(url, data=fields, files={"file": b"x" * 100}, timeout=5)
    assert ok.status_code == 204
    too_large = requests.post(url, data=fields, files={"file": b"x" * 101}, timeout=5)
    assert too_large.status_code == 400 and "EntityTooLarge" in too_large.text
    empty = requests.post(url, data=fields, files={"file": b""}, timeout=5)
    assert empty.status_code == 400 and "EntityTooSmall" in empty.text
    other_key = requests.post(url, data={**fields, "key": "inputs/o/u2"}, files={"file": b"x"}, timeout=5)
    assert other_key.status_code == 403 and "Policy Condition failed" in other_key.text
    forged = {**fields, "policy": fields["policy"][:-4] + "AAA="}
    assert requests.post(url, data=forged, files={"file": b"x"}, timeout=5).status_code == 403
    # A form signed by a principal that may not write there is refused like any other call.
    url, fields = ArtifactStore(as_(iam, "reader").s3, BUCKET).presign_post(
        "inputs/o/u3", "image/png", 100, 60
    )
    assert requests.post(url, data=fields, files={"file": b"x"}, timeout=5).status_code == 403


def test_the_connections_api_needs_manage_connections(iam: tuple[LocalIam, str]) -> None:
    local_iam = iam[0]

    def authorization(name: str) -> str:
        key = local_iam.by_process[name].access_key_id
        return f"AWS4-HMAC-SHA256 Credential={key}/20260101/us-east-1/execute-api/aws4_request, SignedHeaders=host"

    assert local_iam.management_access("POST", "abc=", authorization("lister")) is None
    refused = local_iam.management_access("POST", "abc=", authorization("reader"))
    assert refused is not None and refused.error_type == "AccessDeniedException"
    missing = local_iam.management_access("DELETE", "abc=", "")
    assert missing is not None and missing.message == "Missing Authentication Token"
