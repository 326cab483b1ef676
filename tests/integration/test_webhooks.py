"""Webhooks on the local environment (as `make run` starts it): a merchant's loopback receiver hears its payments.

Registration over HTTP with the merchant's key, a payment, then the notifier, the transactions
topic, the webhook queue and the deliverer as the event runner drives them, to a receiver that
verifies what it gets with the merchants' client (payments_client.verify_webhook).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
import requests

from localenv.environment import LocalEnvironment
from payments_client import InvalidWebhook, verify_webhook
from tests.integration.conftest import PRIMARY, SECONDARY, eventually

pytestmark = pytest.mark.integration


class VerifyingReceiver:
    """A receiver on loopback that keeps the events whose signature verifies, and counts the rest."""

    def __init__(self) -> None:
        self.secrets: list[str] = []
        self.events: list[dict[str, Any]] = []
        self.ids: list[str] = []
        self.refused = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    event = verify_webhook(self.headers, body, owner.secrets)
                except InvalidWebhook:
                    owner.refused += 1
                    self.send_response(400)
                else:
                    owner.events.append(event)
                    owner.ids.append(self.headers["webhook-id"])
                    self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/payments-hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[VerifyingReceiver]:
    found = VerifyingReceiver()
    yield found
    found.close()


def test_a_payment_in_either_region_reaches_the_merchants_receiver_once_signed(
    environment: LocalEnvironment, receiver: VerifyingReceiver
) -> None:
    key = {"x-api-key": environment.api_key}
    made = requests.post(
        environment.api_url(PRIMARY) + "/webhook-endpoints",
        json={"url": receiver.url, "events": ["payment.processed"]},
        headers=key,
        timeout=10,
    )
    assert made.status_code == 201, made.text
    receiver.secrets.append(made.json()["secret"])
    tag = uuid.uuid4().hex[:8]
    # The endpoint lives in both regions: a payment the secondary stores is delivered from there.
    for region, n in ((PRIMARY, 1), (SECONDARY, 2)):
        body = {"transaction_id": f"hook-{tag}-{n}", "customer_id": "c", "amount": "4.20", "currency": "USD"}
        answer = requests.post(environment.api_url(region) + "/process", json=body, headers=key, timeout=10)
        assert answer.status_code == 201, answer.text

    def heard() -> set[str]:
        mine = {
            e["payment"]["transaction_id"] for e in receiver.events if tag in e["payment"]["transaction_id"]
        }
        return mine if len(mine) == 2 else set()

    got = eventually(heard, timeout=30)
    requests.delete(
        environment.api_url(PRIMARY) + f"/webhook-endpoints/{made.json()['id']}", headers=key, timeout=10
    )

    assert got == {f"hook-{tag}-1", f"hook-{tag}-2"}
    assert receiver.refused == 0
    assert all(e["id"] == webhook_id for e, webhook_id in zip(receiver.events, receiver.ids, strict=True))
    assert len(receiver.ids) == len(set(receiver.ids))  # each event once
