"""Webhooks on the local environment (as `make run` starts it): a merchant's loopback receiver hears its payments.

Registration over HTTP with the merchant's key, a payment, then the notifier, the transactions
topic, the webhook queue and the deliverer as the event runner drives them, to a receiver that
verifies what it gets with the merchants' client (payments_client.verify_webhook).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import requests

from localenv.environment import LocalEnvironment
from localenv.webhook_receiver import LoopbackReceiver
from tests.integration.conftest import PRIMARY, SECONDARY, eventually

pytestmark = pytest.mark.integration


@pytest.fixture
def receiver() -> Iterator[LoopbackReceiver]:
    with LoopbackReceiver(path="/payments-hook") as found:
        yield found


def test_a_payment_in_either_region_reaches_the_merchants_receiver_once_signed(
    environment: LocalEnvironment, receiver: LoopbackReceiver
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
    ids = [a.headers["webhook-id"] for a in receiver.arrivals if a.status == 204]  # the verified ones
    assert receiver.unverified == 0
    assert all(e["id"] == webhook_id for e, webhook_id in zip(receiver.events, ids, strict=True))
    assert len(ids) == len(set(ids))  # each event once
