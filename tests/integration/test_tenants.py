"""Tenants own jobs, API keys come and go: the tenants command (admin) and the API handler over moto."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from admin.tenants import AdminError, TenantAdmin
from shared.aws.tenants import TenantStore
from shared.names import DEFAULT_STACK_NAME, usage_plan_name
from tests.integration.conftest import ApiCall

pytestmark = pytest.mark.integration


@pytest.fixture
def admin(moto_aws: Any) -> TenantAdmin:
    clients, resources = moto_aws
    for tier in ("free", "pro"):
        clients.apigateway.create_usage_plan(name=usage_plan_name(DEFAULT_STACK_NAME, tier))
    return TenantAdmin(
        clients.apigateway, TenantStore(clients.dynamodb, resources.tenants_table), DEFAULT_STACK_NAME
    )


def submit(api: ApiCall, key_id: str, workflow: dict[str, Any]) -> str:
    answer = api("POST", "/v1/jobs", {"workflow": workflow}, owner=key_id)
    assert answer.status == 202, answer.body
    return str(answer.body["job_id"])


def listed(api: ApiCall, key_id: str) -> list[str]:
    return [job["job_id"] for job in api("GET", "/v1/jobs", owner=key_id).body["items"]]


def test_two_keys_of_one_tenant_see_the_same_jobs(
    api: ApiCall, admin: TenantAdmin, simple_workflow: dict[str, Any]
) -> None:
    tenant = admin.create_tenant("Acme", "free", "acme")
    first, second = admin.issue_key(tenant.tenant_id), admin.issue_key(tenant.tenant_id)
    job_id = submit(api, first.api_key_id, simple_workflow)

    seen = api("GET", f"/v1/jobs/{job_id}", owner=second.api_key_id)

    assert seen.status == 200 and seen.body["job_id"] == job_id
    assert listed(api, second.api_key_id) == listed(api, first.api_key_id) == [job_id]
    assert api("DELETE", f"/v1/jobs/{job_id}", owner=second.api_key_id).status == 202


def test_a_rotated_key_still_sees_the_tenants_old_jobs_and_the_revoked_one_is_a_403(
    api: ApiCall, admin: TenantAdmin, simple_workflow: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A warm function honours a key it knows for TENANT_CACHE_SECONDS; here it asks every time.
    monkeypatch.setenv("TENANT_CACHE_SECONDS", "0")
    tenant = admin.create_tenant("Acme", "pro")
    old = admin.issue_key(tenant.tenant_id)
    job_id = submit(api, old.api_key_id, simple_workflow)

    new = admin.issue_key(tenant.tenant_id)
    admin.revoke_key(old.api_key_id)

    assert api("GET", f"/v1/jobs/{job_id}", owner=new.api_key_id).status == 200
    assert listed(api, new.api_key_id) == [job_id]
    refused = api("GET", f"/v1/jobs/{job_id}", owner=old.api_key_id)
    assert refused.status == 403 and refused.body["title"] == "The API key belongs to no tenant"
    # API Gateway no longer holds the old key, so it refuses it before the function is called.
    assert old.api_key_id not in {key["id"] for key in admin._apigw.get_api_keys()["items"]}
    shown = {key.api_key_id: key.active for key in admin.show(tenant.tenant_id)[1]}
    assert shown == {old.api_key_id: False, new.api_key_id: True}


def test_another_tenants_job_stays_a_404(
    api: ApiCall, admin: TenantAdmin, simple_workflow: dict[str, Any]
) -> None:
    mine = admin.issue_key(admin.create_tenant("Mine", "free").tenant_id)
    theirs = admin.issue_key(admin.create_tenant("Theirs", "free").tenant_id)
    job_id = submit(api, theirs.api_key_id, simple_workflow)

    assert api("GET", f"/v1/jobs/{job_id}", owner=mine.api_key_id).status == 404
    assert api("DELETE", f"/v1/jobs/{job_id}", owner=mine.api_key_id).status == 404
    assert listed(api, mine.api_key_id) == []


def test_uploads_and_websocket_tokens_belong_to_the_tenant(
    api: ApiCall, admin: TenantAdmin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WS_TOKEN_SECRET", "s")
    monkeypatch.setenv("WEBSOCKET_URL", "ws://127.0.0.1:1/local")
    key = admin.issue_key(admin.create_tenant("Acme", "free", "acme").tenant_id)

    token = api("POST", "/v1/ws-tokens", owner=key.api_key_id).body["token"]
    upload = api(
        "POST", "/v1/uploads", {"filename": "in.png", "content_type": "image/png"}, owner=key.api_key_id
    )

    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert claims["sub"] == "acme"
    assert upload.status == 201, upload.body
    assert upload.body["fields"]["key"].startswith("inputs/acme/")


def test_a_known_key_is_cached_and_a_revoked_one_is_forgotten_once_the_cache_ages(
    moto_aws: Any, admin: TenantAdmin
) -> None:
    from functions.api.tenancy import TenantDirectory

    now = [0.0]
    store = TenantStore(moto_aws[0].dynamodb, moto_aws[1].tenants_table)
    directory = TenantDirectory(store, ttl_s=60, clock=lambda: now[0])
    key = admin.issue_key(admin.create_tenant("Acme", "free", "acme").tenant_id)
    assert directory.tenant_of(key.api_key_id) == "acme"
    admin.revoke_key(key.api_key_id)

    now[0] = 59
    assert directory.tenant_of(key.api_key_id) == "acme"
    now[0] = 60
    assert directory.tenant_of(key.api_key_id) is None
    assert directory.tenant_of("never-issued") is None


def test_a_tier_change_moves_every_active_key_to_the_new_plan(moto_aws: Any, admin: TenantAdmin) -> None:
    apigw = moto_aws[0].apigateway
    tenant = admin.create_tenant("Acme", "free")
    keys = [admin.issue_key(tenant.tenant_id) for _ in range(2)]

    assert admin.set_tier(tenant.tenant_id, "pro").tier == "pro"

    pro = admin.tiers()["pro"]
    for key in keys:
        assert [plan["id"] for plan in apigw.get_usage_plans(keyId=key.api_key_id)["items"]] == [pro]
    assert admin.show(tenant.tenant_id)[0].tier == "pro"


def test_what_cannot_be_done_is_said_in_words(admin: TenantAdmin) -> None:
    refusals = [
        (lambda: admin.create_tenant("Acme", "gold"), "no tier 'gold'.*free, pro"),
        (lambda: admin.create_tenant("Acme", "free", "Not/Plain"), "lowercase letters"),
        (lambda: admin.issue_key("nobody"), "no tenant 'nobody'"),
        (lambda: admin.revoke_key("nokey"), "no tenant holds"),
    ]
    for call, message in refusals:
        with pytest.raises(AdminError, match=message):
            call()


def test_the_command_finds_the_generated_tenants_table_from_the_stack_outputs(moto_aws: Any) -> None:
    import boto3

    from admin.__main__ import tenants_table_of

    session = boto3.session.Session(region_name="us-east-1")
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"TenantsTable": {"Value": "ComfyApiService-TenantsTable-1A2B3C"}},
    }
    session.client("cloudformation").create_stack(StackName="with-output", TemplateBody=json.dumps(template))
    assert tenants_table_of(session, "with-output", None) == "ComfyApiService-TenantsTable-1A2B3C"
    with pytest.raises(AdminError, match="--stack-name"):
        tenants_table_of(session, "no-such-stack", None)
