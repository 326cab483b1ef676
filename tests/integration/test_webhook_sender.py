"""Sending a delivery: signed, to a loopback receiver; refused before connecting when the name turned private.

Receivers listen on loopback only; refused addresses come from a stubbed resolver and no
connection to them is ever attempted (the pool factory records every connection it would open).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from chalicelib.adapters.webhook_sender import HttpWebhookSender, urllib3_pool
from chalicelib.webhooks import AddressRefused, loopback_resolver, signature_headers, validate_endpoint

pytestmark = pytest.mark.integration


class Receiver:
    """A merchant's receiver on loopback: answers each POST with the next status, records what came."""

    def __init__(self, statuses: Sequence[int], location: str = "") -> None:
        self.received: list[tuple[str, dict[str, str], str]] = []
        answers, received = list(statuses), self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                received.append((self.path, dict(self.headers.items()), body))
                self.send_response(answers.pop(0) if answers else 204)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver([204])
    yield found
    found.close()


class RecordingPools:
    """The pool factory, recording every connection the sender would open."""

    def __init__(self) -> None:
        self.opened: list[tuple[str, str, int, str]] = []

    def __call__(self, scheme: str, address: str, port: int, host: str) -> Any:
        self.opened.append((scheme, address, port, host))
        return urllib3_pool(scheme, address, port, host)


def test_a_signed_delivery_reaches_a_loopback_receiver_with_its_headers(receiver: Receiver) -> None:
    sender = HttpWebhookSender(resolve=loopback_resolver, allow_loopback=True)
    body = json.dumps({"id": "evt_1", "event": "payment.processed"})
    headers = signature_headers("evt_1", body, ["whsec_" + "A" * 43 + "="], 1_900_000_000.0)

    status = sender.send(f"{receiver.url}/hooks?merchant=1", headers, body)

    [(path, sent, got)] = receiver.received
    assert status == 204 and path == "/hooks?merchant=1" and got == body
    assert sent["webhook-id"] == "evt_1" and sent["webhook-signature"].startswith("v1,")
    assert sent["Host"] == receiver.url.removeprefix("http://")


def test_a_redirect_is_an_answer_not_a_place_to_go() -> None:
    elsewhere = Receiver([204])
    redirecting = Receiver([302], location=f"{elsewhere.url}/stolen")
    try:
        status = HttpWebhookSender(resolve=loopback_resolver, allow_loopback=True).send(
            f"{redirecting.url}/hook", {}, "{}"
        )
    finally:
        redirecting.close()
        elsewhere.close()

    assert status == 302 and elsewhere.received == []


def test_no_answer_is_none(receiver: Receiver) -> None:
    receiver.close()

    assert (
        HttpWebhookSender(resolve=loopback_resolver, allow_loopback=True).send(receiver.url, {}, "{}") is None
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


def test_loopback_is_refused_outside_the_local_stage(receiver: Receiver) -> None:
    pools = RecordingPools()

    with pytest.raises(AddressRefused, match="loopback"):
        HttpWebhookSender(resolve=loopback_resolver, allow_loopback=False, pool=pools).send(
            receiver.url, {}, "{}"
        )
    assert pools.opened == [] and receiver.received == []
