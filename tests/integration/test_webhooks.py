"""Webhooks on the local environment (as `make run` starts it): a merchant's loopback receiver hears its payments.

Registration over HTTP with the merchant's key, a payment, then the notifier, the transactions
topic, the webhook queue and the deliverer as the event runner drives them, to a receiver that
verifies what it gets with the merchants' client (payments_client.verify_webhook).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests

from localenv.environment import LocalEnvironment
from localenv.webhook_receiver import LoopbackReceiver
from tests.integration.conftest import PRIMARY, SECONDARY, eventually

pytestmark = pytest.mark.integration


def listed(environment: LocalEnvironment, region: str, endpoint_id: str) -> bool:
    answer = requests.get(
        environment.api_url(region) + "/webhook-endpoints",
        headers={"x-api-key": environment.api_key},
        timeout=10,
    )
    return endpoint_id in {e["id"] for e in answer.json()["endpoints"]}


def register(environment: LocalEnvironment, region: str, receiver: LoopbackReceiver) -> str:
    """An endpoint for ``receiver``'s ``payment.processed`` events, registered in ``region``; its id.

    The receiver verifies what arrives with the secret the registration answered.
    """
    made = requests.post(
        environment.api_url(region) + "/webhook-endpoints",
        json={"url": receiver.url, "events": ["payment.processed"]},
        headers={"x-api-key": environment.api_key},
        timeout=10,
    )
    assert made.status_code == 201, made.text
    receiver.secrets.append(made.json()["secret"])
    return str(made.json()["id"])


def pay(environment: LocalEnvironment, region: str, transaction_id: str, amount: str) -> None:
    body = {"transaction_id": transaction_id, "customer_id": "c", "amount": amount, "currency": "USD"}
    answer = requests.post(
        environment.api_url(region) + "/process",
        json=body,
        headers={"x-api-key": environment.api_key},
        timeout=10,
    )
    assert answer.status_code == 201, answer.text


@pytest.fixture
def receiver() -> Iterator[LoopbackReceiver]:
    with LoopbackReceiver(path="/payments-hook") as found:
        yield found


def test_a_payment_in_either_region_reaches_the_merchants_receiver_once_signed(
    environment: LocalEnvironment, receiver: LoopbackReceiver
) -> None:
    key = {"x-api-key": environment.api_key}
    endpoint = register(environment, PRIMARY, receiver)
    # An endpoint receives what each region announces once that region has its copy: events in
    # the replication window before that are a replay's (the next test).
    eventually(lambda: listed(environment, SECONDARY, endpoint), timeout=10)
    tag = uuid.uuid4().hex[:8]
    # The endpoint lives in both regions: a payment the secondary stores is delivered from there.
    for region, n in ((PRIMARY, 1), (SECONDARY, 2)):
        pay(environment, region, f"hook-{tag}-{n}", "4.20")

    def heard() -> set[str]:
        mine = {
            e["payment"]["transaction_id"] for e in receiver.events if tag in e["payment"]["transaction_id"]
        }
        return mine if len(mine) == 2 else set()

    got = eventually(heard, timeout=30)
    requests.delete(environment.api_url(PRIMARY) + f"/webhook-endpoints/{endpoint}", headers=key, timeout=10)

    assert got == {f"hook-{tag}-1", f"hook-{tag}-2"}
    ids = [a.headers["webhook-id"] for a in receiver.arrivals if a.status == 204]  # the verified ones
    assert receiver.unverified == 0
    assert all(e["id"] == webhook_id for e, webhook_id in zip(receiver.events, ids, strict=True))
    assert len(ids) == len(set(ids))  # each event once


def test_a_replay_asked_of_the_secondary_resends_what_the_primary_stored_before_the_endpoint_existed(
    environment: LocalEnvironment, receiver: LoopbackReceiver
) -> None:
    key = {"x-api-key": environment.api_key}
    tag = uuid.uuid4().hex[:8]
    since = datetime.now(UTC) - timedelta(seconds=1)
    for n in range(3):
        pay(environment, PRIMARY, f"late-{tag}-{n}", "1.00")
    endpoint = register(environment, SECONDARY, receiver)

    def heard() -> set[str]:
        return {
            e["payment"]["transaction_id"] for e in receiver.events if tag in e["payment"]["transaction_id"]
        }

    def replayed() -> set[str]:
        # The payments replicate to the secondary within moments: a replay asked before they are
        # there is asked again, and supersedes the one before.
        answer = requests.post(
            environment.api_url(SECONDARY) + f"/webhook-endpoints/{endpoint}/replay",
            json={"from": since.isoformat()},
            headers=key,
            timeout=10,
        )
        assert answer.status_code == 202, answer.text
        return set(eventually(lambda: heard() if len(heard()) == 3 else set(), timeout=10))

    got = eventually(replayed, timeout=40)
    requests.delete(
        environment.api_url(SECONDARY) + f"/webhook-endpoints/{endpoint}", headers=key, timeout=10
    )

    assert got == {f"late-{tag}-{n}" for n in range(3)}
    assert receiver.unverified == 0
