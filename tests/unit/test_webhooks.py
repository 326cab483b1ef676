"""Webhook endpoints' rules: registration, the address guard, signatures and the retry schedule (no AWS)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from chalicelib.webhooks import (
    DISABLE_AFTER_FAILING_SECONDS,
    MAX_ENDPOINTS_PER_CLIENT,
    RETRY_DELAYS_SECONDS,
    ROTATION_OVERLAP_SECONDS,
    AddressRefused,
    Outcome,
    Resolver,
    SigningSecrets,
    address_kind,
    checked_addresses,
    decide,
    new_secret,
    retry_schedule,
    signature_headers,
    validate_endpoint,
)

GOOD = "93.184.215.14"  # a public address; the resolver is stubbed, nothing is resolved or connected to


def resolver(answers: Mapping[str, Sequence[str]]) -> Resolver:
    """A stubbed resolver: no test connects to, or even resolves, a real name."""

    def resolve(host: str) -> Sequence[str]:
        if host not in answers:
            raise OSError("no such name")
        return answers[host]

    return resolve


def fields(
    body: object,
    *,
    existing: int = 0,
    local: bool = False,
    answers: Mapping[str, Sequence[str]] | None = None,
) -> list[str]:
    _, errors = validate_endpoint(
        body, resolve=resolver(answers or {"hooks.example.com": [GOOD]}), existing=existing, local_stage=local
    )
    return [f"{e.field}: {e.message}" for e in errors]


def test_an_https_endpoint_with_known_events_is_accepted() -> None:
    endpoint, errors = validate_endpoint(
        {"url": "https://hooks.example.com/payments", "events": ["payment.processed", "payment.processed"]},
        resolve=resolver({"hooks.example.com": [GOOD]}),
        existing=0,
    )

    assert errors == []
    assert endpoint is not None and endpoint.events == ("payment.processed",)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://hooks.example.com/p", "must be https"),
        ("ftp://hooks.example.com/p", "must be https"),
        ("https://user:pw@hooks.example.com/p", "must not hold credentials"),
        ("https:///p", "has no host"),
        ("https://hooks.example.com/p#x", "must not have a fragment"),
        ("https://nowhere.example.com/p", "no address"),
        ("https://hooks.example.com:99999/p", "is not a URL"),
        ("https://" + "a" * 3000, "at most 2048"),
        (17, "must be an https URL"),
    ],
)
def test_a_url_that_is_not_a_public_https_endpoint_is_refused_naming_the_url(url: object, says: str) -> None:
    errors = fields({"url": url, "events": ["payment.processed"]})

    assert len(errors) == 1 and errors[0].startswith("url: ") and says in errors[0], errors


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("169.254.10.10", "link-local"),
        ("fe80::1", "link-local"),
        ("100.64.0.1", "not public"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("::ffff:10.0.0.1", "private"),
        ("fc00::1", "private"),
    ],
)
def test_a_host_resolving_to_a_private_loopback_link_local_or_metadata_address_is_refused(
    address: str, kind: str
) -> None:
    errors = fields(
        {"url": "https://inside.example.com/hook", "events": ["payment.rejected"]},
        answers={"inside.example.com": [address]},
    )

    assert len(errors) == 1 and "is refused" in errors[0] and kind in errors[0], errors


def test_one_private_address_among_public_ones_refuses_the_host() -> None:
    with pytest.raises(AddressRefused, match="private"):
        checked_addresses("rebind.example.com", resolver({"rebind.example.com": [GOOD, "10.0.0.7"]}))


def test_plain_http_to_loopback_only_in_the_local_stage() -> None:
    body = {"url": "http://127.0.0.1:9000/hook", "events": ["payment.processed"]}
    loopback = {"127.0.0.1": ["127.0.0.1"]}

    assert fields(body, local=True, answers=loopback) == []
    assert fields(body, local=False, answers=loopback) != []
    assert fields({**body, "url": "http://hooks.example.com/hook"}, local=True) != []


def test_unknown_events_fields_and_the_endpoint_limit_are_each_named() -> None:
    errors = fields(
        {"url": "https://hooks.example.com/p", "events": ["payment.refunded"], "secret": "x"},
        existing=MAX_ENDPOINTS_PER_CLIENT,
    )

    assert any(e.startswith("events: 'payment.refunded' is not an event type") for e in errors)
    assert any(e.startswith("secret: ") for e in errors)
    assert any(f"at most {MAX_ENDPOINTS_PER_CLIENT}" in e for e in errors)
    assert fields({"url": "https://hooks.example.com/p", "events": []}) != []
    assert fields(["not", "an", "object"]) == ["body: must be a JSON object with url and events"]


@given(st.ip_addresses())
def test_every_address_is_either_public_or_named(address: object) -> None:
    kind = address_kind(str(address))
    assert kind is None or isinstance(kind, str)
    assert kind is not None or address.is_global  # type: ignore[attr-defined]


def test_signatures_verify_with_the_standard_webhooks_library_and_name_the_event() -> None:
    secret, body, now = (
        new_secret(),
        json.dumps({"id": "evt_9", "event": "payment.processed"}),
        1_900_000_000.0,
    )
    headers = signature_headers("evt_9", body, [secret], now)

    assert headers["webhook-id"] == "evt_9" and headers["webhook-timestamp"] == "1900000000"
    assert headers["webhook-signature"] == Webhook(secret).sign(
        "evt_9", datetime.fromtimestamp(now, UTC), body
    )
    assert secret.startswith("whsec_") and new_secret() != secret


def test_a_rotated_secret_signs_beside_the_new_one_for_the_overlap_only() -> None:
    first = SigningSecrets(new_secret())
    rotated = first.rotated(now=1000.0)

    during = rotated.in_use(1000.0 + ROTATION_OVERLAP_SECONDS - 1)
    after = rotated.in_use(1000.0 + ROTATION_OVERLAP_SECONDS)
    signature = signature_headers("evt_1", "{}", during, 5000.0)["webhook-signature"]

    assert during == [rotated.current, first.current] and after == [rotated.current]
    assert len(signature.split(" ")) == 2


def test_the_schedule_retries_for_more_than_three_days_then_gives_up() -> None:
    schedule = retry_schedule()
    last = len(RETRY_DELAYS_SECONDS)

    assert schedule[0] == 0 and schedule == sorted(schedule)
    assert 3 * 24 * 3600 < schedule[-1] < 4 * 24 * 3600
    assert decide(500, attempt=1, now=100.0, failing_since=None) == (Outcome.RETRY, 105.0, False)
    assert decide(None, attempt=last, now=9e5, failing_since=0.0).outcome is Outcome.GIVE_UP


def test_any_2xx_delivers_410_disables_at_once_and_days_of_failures_disable() -> None:
    assert decide(204, attempt=3, now=0.0, failing_since=None).outcome is Outcome.DELIVERED
    assert decide(410, attempt=1, now=0.0, failing_since=None) == (Outcome.GONE, None, True)
    assert decide(503, attempt=2, now=DISABLE_AFTER_FAILING_SECONDS, failing_since=0.0).disable
    assert not decide(503, attempt=2, now=DISABLE_AFTER_FAILING_SECONDS - 1, failing_since=0.0).disable
