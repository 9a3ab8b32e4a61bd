"""A client of the local stack, over HTTP only: submit, succeed, download, and every refusal."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from typing import Any

import boto3
import pytest
import requests
from botocore.exceptions import ClientError
from PIL import Image

from shared.names import JobAttr, TenantAttr
from tests.conftest import ROOT, load_workflow
from tests.e2e.conftest import Stack, submit, wait_for


def test_a_job_runs_to_success_and_its_image_downloads(stack: Stack) -> None:
    client = stack.client()
    workflow = load_workflow("simple_invert_save.json")
    receipt = submit(client, stack.rest_url, workflow)
    assert receipt.status_code == 202
    job = wait_for(client, stack.rest_url + receipt.headers["Location"])
    assert job["status"] == "succeeded", job
    assert job["attempts"] == 1 and job["progress"] == 100
    [output] = job["outputs"]
    assert output["content_type"] == "image/png" and output["node_id"] == "3"
    image = Image.open(io.BytesIO(requests.get(output["url"], timeout=10).content)).convert("RGB")
    width, height = workflow["1"]["inputs"]["width"], workflow["1"]["inputs"]["height"]
    assert image.size == (width, height)
    color = workflow["1"]["inputs"]["color"]
    red, green, blue = (color >> 16) & 255, (color >> 8) & 255, color & 255
    # ImageInvert: every channel is 255 minus EmptyImage's colour.
    assert image.getpixel((0, 0)) == (255 - red, 255 - green, 255 - blue)


def test_idempotent_replay_and_reuse(stack: Stack) -> None:
    client = stack.client()
    workflow = load_workflow("simple_invert_save.json")
    first = submit(client, stack.rest_url, workflow, **{"Idempotency-Key": "e2e-replay"})
    again = submit(client, stack.rest_url, workflow, **{"Idempotency-Key": "e2e-replay"})
    assert again.status_code == 202 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    # Once the job has run, a retry still gets the receipt as it was first given, byte for byte.
    assert wait_for(client, stack.rest_url + first.headers["Location"])["status"] == "succeeded"
    late = submit(client, stack.rest_url, workflow, **{"Idempotency-Key": "e2e-replay"})
    assert late.content == first.content and late.headers["Idempotent-Replayed"] == "true"
    workflow["1"]["inputs"]["width"] = 32
    reused = submit(client, stack.rest_url, workflow, **{"Idempotency-Key": "e2e-replay"})
    assert reused.status_code == 422
    assert reused.headers["Content-Type"] == "application/problem+json"


def test_another_owners_job_is_a_404(stack: Stack) -> None:
    alice, bob = stack.client(0), stack.client(1)
    job_id = submit(alice, stack.rest_url, load_workflow("simple_invert_save.json")).json()["job_id"]
    assert bob.get(f"{stack.rest_url}/v1/jobs/{job_id}", timeout=10).status_code == 404
    assert alice.get(f"{stack.rest_url}/v1/jobs/{job_id}", timeout=10).status_code == 200


def test_a_missing_or_unknown_key_is_forbidden_by_the_gateway(stack: Stack) -> None:
    for headers in ({}, {"x-api-key": "not-a-key"}):
        answer = requests.get(f"{stack.rest_url}/v1/health", headers=headers, timeout=10)
        assert answer.status_code == 403 and answer.json() == {"message": "Forbidden"}


def test_an_execution_error_fails_the_job_with_its_node(stack: Stack) -> None:
    client = stack.client()
    receipt = submit(client, stack.rest_url, load_workflow("runtime_error_imagetomask_alpha.json"))
    job = wait_for(client, stack.rest_url + receipt.headers["Location"])
    assert job["status"] == "failed"
    error: dict[str, Any] = job["error"]
    assert (error["code"], error["node_id"], error["node_type"]) == ("execution_error", "2", "ImageToMask")
    assert "out of bounds" in error["message"]
    assert job["outputs"] == []


def test_a_workflow_comfyui_refuses_fails_at_once_with_its_node(stack: Stack) -> None:
    client = stack.client()
    workflow = load_workflow("simple_invert_save.json")
    del workflow["3"]["inputs"]["images"]
    receipt = submit(client, stack.rest_url, workflow)
    job = wait_for(client, stack.rest_url + receipt.headers["Location"])
    assert job["status"] == "failed" and job["attempts"] == 1
    assert (job["error"]["code"], job["error"]["node_id"], job["error"]["node_type"]) == (
        "validation_error",
        "3",
        "SaveImage",
    )
    assert "images" in job["error"]["message"]


def tenants(stack: Stack, *args: str) -> Any:
    """The platform team's command, as the README gives it, against this running stack."""
    done = subprocess.run(
        [sys.executable, "-m", "admin", "tenants", "--local", str(stack.state_dir), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_tenant_rotates_its_key_without_losing_a_job(stack: Stack) -> None:
    created = tenants(stack, "create", "Acme", "--tier", "pro")
    tenant_id, old = created["tenant"]["tenant_id"], created["key"]
    old_client, new_client = requests.Session(), requests.Session()
    old_client.headers["x-api-key"] = old["api_key"]
    receipt = submit(old_client, stack.rest_url, load_workflow("simple_invert_save.json"))
    assert receipt.status_code == 202, receipt.text
    job_url = stack.rest_url + receipt.headers["Location"]

    new = tenants(stack, "issue-key", tenant_id)
    new_client.headers["x-api-key"] = new["api_key"]
    assert new_client.get(job_url, timeout=10).status_code == 200  # two keys, one tenant
    tenants(stack, "revoke-key", old["api_key_id"])

    assert new_client.get(job_url, timeout=10).status_code == 200
    listing = new_client.get(f"{stack.rest_url}/v1/jobs", timeout=10).json()
    assert receipt.json()["job_id"] in [job["job_id"] for job in listing["items"]]
    refused = old_client.get(job_url, timeout=10)
    assert (refused.status_code, refused.json()) == (403, {"message": "Forbidden"})
    assert stack.client(0).get(job_url, timeout=10).status_code == 404  # another tenant
    shown = tenants(stack, "show", tenant_id)
    assert [key["revoked_at"] is None for key in shown["keys"]] == [False, True]


def test_the_runner_runs_as_its_role_and_nothing_more(stack: Stack) -> None:
    """The stack enforces the template's policies: the runner's own keys reach its grants only."""
    env = stack.runner_env
    session = boto3.session.Session(
        env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1"
    )
    dynamodb = session.client("dynamodb", endpoint_url=stack.endpoints["aws_endpoint"])
    dynamodb.get_item(TableName=env["JOBS_TABLE_NAME"], Key={JobAttr.JOB_ID: {"S": "nobody"}})
    with pytest.raises(ClientError) as denied:
        dynamodb.get_item(TableName=env["TENANTS_TABLE_NAME"], Key={TenantAttr.ITEM: {"S": "nobody"}})
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    sqs = session.client("sqs", endpoint_url=stack.endpoints["aws_endpoint"])
    with pytest.raises(ClientError) as denied:
        sqs.send_message(QueueUrl=env["JOBS_QUEUE_URL"], MessageBody="{}")
    assert "AccessDenied" in denied.value.response["Error"]["Code"]
