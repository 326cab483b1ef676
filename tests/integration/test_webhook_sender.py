"""Sending a delivery: signed, to a loopback receiver; refused before connecting when the name turned private.

Receivers listen on loopback only; refused addresses come from a stubbed resolver and no
connection to them is ever attempted (the pool factory records every connection it would open).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.adapters.webhook_sender import HttpWebhookSender, urllib3_pool
from chalicelib.webhooks import AddressRefused, loopback_resolver, signature_headers, validate_endpoint
from localenv.webhook_receiver import LoopbackReceiver

pytestmark = pytest.mark.integration


@pytest.fixture
def receiver() -> Iterator[LoopbackReceiver]:
    found = LoopbackReceiver(204)
    yield found
    found.close()


class RecordingPools:
    """The pool factory, recording every connection the sender would open."""

    def __init__(self) -> None:
        self.opened: list[tuple[str, str, int, str]] = []

    def __call__(self, scheme: str, address: str, port: int, host: str) -> Any:
        self.opened.append((scheme, address, port, host))
        return urllib3_pool(scheme, address, port, host)


def test_a_signed_delivery_reaches_a_loopback_receiver_with_its_headers(receiver: LoopbackReceiver) -> None:
    sender = HttpWebhookSender(resolve=loopback_resolver, allow_loopback=True)
    body = json.dumps({"id": "evt_1", "event": "payment.processed"})
    headers = signature_headers("evt_1", body, ["whsec_" + "A" * 43 + "="], 1_900_000_000.0)

    status = sender.send(f"{receiver.base_url}/hooks?merchant=1", headers, body)

    [(path, sent, got)] = [(a.path, a.headers, a.body) for a in receiver.arrivals]
    assert status == 204 and path == "/hooks?merchant=1" and got == body
    assert sent["webhook-id"] == "evt_1" and sent["webhook-signature"].startswith("v1,")
    assert sent["Host"] == receiver.base_url.removeprefix("http://")


def test_a_redirect_is_an_answer_not_a_place_to_go() -> None:
    elsewhere = LoopbackReceiver(204)
    redirecting = LoopbackReceiver(302, location=f"{elsewhere.base_url}/stolen")
    try:
        status = HttpWebhookSender(resolve=loopback_resolver, allow_loopback=True).send(
            f"{redirecting.base_url}/hook", {}, "{}"
        )
    finally:
        redirecting.close()
        elsewhere.close()

    assert status == 302 and elsewhere.arrivals == []


def test_no_answer_is_none(receiver: LoopbackReceiver) -> None:
    receiver.close()

    assert (
        HttpWebhookSender(resolve=loopback_resolver, allow_loopback=True).send(receiver.base_url, {}, "{}")
        is None
    )


def test_a_name_that_turned_private_after_registration_is_refused_before_any_connection() -> None:
    answers = {"hooks.merchant.example": ["93.184.215.14"]}

    def resolve(host: str) -> list[str]:
        return list(answers[host])

    url = "https://hooks.merchant.example/payments"
    _, errors = validate_endpoint({"url": url, "events": ["payment.processed"]}, resolve=resolve, existing=0)
    answers["hooks.merchant.example"] = ["169.254.169.254"]  # the name's owner changed its answer
    pools = RecordingPools()

    with pytest.raises(AddressRefused, match="metadata"):
        HttpWebhookSender(resolve=resolve, allow_loopback=False, pool=pools).send(url, {}, "{}")
    assert errors == [] and pools.opened == []


def test_loopback_is_refused_outside_the_local_stage(receiver: LoopbackReceiver) -> None:
    pools = RecordingPools()

    with pytest.raises(AddressRefused, match="loopback"):
        HttpWebhookSender(resolve=loopback_resolver, allow_loopback=False, pool=pools).send(
            receiver.url, {}, "{}"
        )
    assert pools.opened == [] and receiver.arrivals == []
