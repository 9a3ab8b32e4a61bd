"""Webhook signing (checked with the Standard Webhooks library), URL safety, the retry schedule, and the
stream filter: the rules, with no network."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from infra.webhooks import transition_filters
from local.event_filter import matches_any
from shared.models import JobStatus
from shared.webhooks.backoff import RetryPolicy, parse_retry_after
from shared.webhooks.events import JobEvent, event_id, event_of
from shared.webhooks.signing import new_secret, signed_headers
from shared.webhooks.urls import UnsafeUrl, check_url


def test_signatures_verify_with_the_standard_webhooks_library_and_both_secrets_sign_during_a_rotation() -> (
    None
):
    old, new = new_secret(), new_secret()
    body = json.dumps({"type": "job.succeeded"}).encode()
    import time

    headers = signed_headers([new, old], "msg_1", int(time.time()), body)
    assert Webhook(new).verify(body, headers) == {"type": "job.succeeded"}
    assert Webhook(old).verify(body, headers) == {"type": "job.succeeded"}
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new).verify(body + b" ", headers)


def test_an_event_id_is_stable_per_job_and_event_and_only_status_changes_are_events() -> None:
    assert event_id("j", JobEvent.SUCCEEDED) == event_id("j", JobEvent.SUCCEEDED)
    assert event_id("j", JobEvent.SUCCEEDED) != event_id("j", JobEvent.FAILED)
    assert event_of(JobStatus.RUNNING, JobStatus.RUNNING) is None
    assert event_of(JobStatus.QUEUED, JobStatus.RUNNING) is JobEvent.RUNNING
    assert event_of(JobStatus.QUEUED, JobStatus.EXPIRED) is JobEvent.EXPIRED


def _resolver(*addresses: str):  # type: ignore[no-untyped-def]
    def resolve(host: str, port: int) -> Sequence[str]:
        return list(addresses)

    return resolve


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.7", "private"),
        ("172.16.5.5", "private"),
        ("100.64.0.1", "private"),  # carrier-grade NAT: not global
        ("169.254.169.254", "link-local"),  # the instance metadata service
        ("::1", "loopback"),
        ("fd00:ec2::254", "private"),  # the metadata service over IPv6
        ("::ffff:10.0.0.1", "private"),
        ("0.0.0.0", "not a unicast"),
    ],
)
def test_hosts_that_resolve_to_internal_addresses_are_refused(address: str, why: str) -> None:
    with pytest.raises(UnsafeUrl, match=why):
        check_url("https://hooks.example.com/x", resolve=_resolver(address))


def test_one_internal_address_among_public_ones_is_enough_to_refuse() -> None:
    with pytest.raises(UnsafeUrl, match=r"10\.0\.0\.1"):
        check_url("https://hooks.example.com/x", resolve=_resolver("93.184.216.34", "10.0.0.1"))


def test_a_public_https_url_is_pinned_to_the_address_it_was_checked_at() -> None:
    target = check_url("https://Hooks.Example.com:8443/in?x=1", resolve=_resolver("93.184.216.34"))
    assert (target.host, target.port, target.path, target.address) == (
        "hooks.example.com",
        8443,
        "/in?x=1",
        "93.184.216.34",
    )
    assert target.host_header == "hooks.example.com:8443"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://hooks.example.com/", "must be https"),
        ("ftp://hooks.example.com/", "must be https"),
        ("https://user:pw@hooks.example.com/", "user name"),
        ("https:///nohost", "no host"),
        ("https://hooks.example.com/#frag", "fragment"),
        ("https://[::1/", "not valid"),
    ],
)
def test_malformed_or_insecure_urls_are_refused(url: str, why: str) -> None:
    with pytest.raises(UnsafeUrl, match=why):
        check_url(url, resolve=_resolver("93.184.216.34"))


def test_plain_http_to_127_0_0_1_only_when_the_local_stack_allows_it() -> None:
    with pytest.raises(UnsafeUrl, match="https"):
        check_url("http://127.0.0.1:9000/hook")
    assert check_url("http://127.0.0.1:9000/hook", allow_local_http=True).address == "127.0.0.1"
    with pytest.raises(UnsafeUrl):
        check_url("http://localhost:9000/hook", allow_local_http=True, resolve=_resolver("127.0.0.1"))
    with pytest.raises(UnsafeUrl, match="loopback"):
        check_url("https://127.0.0.1:9000/hook", allow_local_http=True, resolve=_resolver("127.0.0.1"))


def test_the_production_schedule_backs_off_exponentially_with_jitter_for_up_to_a_day() -> None:
    policy = RetryPolicy(base_seconds=5, max_delay_seconds=4 * 3600, window_seconds=24 * 3600)
    rng = random.Random(7)
    delays, now, attempt = [], 0.0, 1
    while (delay := policy.next_delay(attempt, 0.0, now, None, rng)) is not None:
        delays.append(delay)
        now += delay
        attempt += 1
    ceilings = [min(4 * 3600, 5 * 2 ** (n - 1)) for n in range(1, len(delays) + 1)]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert 20 * 3600 < now <= 24 * 3600, "retries go on for most of the day, and stop within it"
    assert 12 <= len(delays) <= 20


def test_retry_after_is_honoured_in_seconds_or_as_a_date_and_bounded_by_the_window() -> None:
    policy = RetryPolicy(base_seconds=5, max_delay_seconds=3600, window_seconds=24 * 3600)
    assert policy.next_delay(1, 0.0, 10.0, retry_after=120) == 120
    assert policy.next_delay(1, 0.0, 10.0, retry_after=10**6) == 3600
    assert policy.next_delay(1, 0.0, 24 * 3600 - 60, retry_after=120) is None
    assert parse_retry_after("30", 0.0) == 30
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470.0) == pytest.approx(10.0)
    assert parse_retry_after("soon", 0.0) is None


def _record(old: str | None, new: str, event_name: str = "MODIFY") -> dict[str, object]:
    images: dict[str, object] = {"NewImage": {"status": {"S": new}}}
    if old is not None:
        images["OldImage"] = {"status": {"S": old}}
    return {"eventName": event_name, "dynamodb": images}


def test_the_stream_filter_passes_status_transitions_and_nothing_else() -> None:
    patterns = transition_filters()
    passes = [
        ("queued", "running"),
        ("running", "succeeded"),
        ("queued", "canceled"),
        ("queued", "expired"),
        ("queued", "failed"),
        ("running", "failed"),
        ("running", "canceled"),
    ]
    for old, new in passes:
        assert matches_any(patterns, _record(old, new)), (old, new)
    # Progress, lease renewals, a cancel request, writes to a finished job, the job's creation and TTL.
    for old, new in [("running", "running"), ("queued", "queued"), ("succeeded", "succeeded")]:
        assert not matches_any(patterns, _record(old, new)), (old, new)
    assert not matches_any(patterns, _record(None, "queued", "INSERT"))
    assert not matches_any(
        patterns, {"eventName": "REMOVE", "dynamodb": {"OldImage": {"status": {"S": "succeeded"}}}}
    )
