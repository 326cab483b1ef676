"""The webhook deliverer through its handler, against moto: a payment's event reaches its client's receiver.

A payment made through the API is announced by the notifier on the transactions topic, whose
subscription feeds the webhook queue; the deliverer turns it into deliveries and attempts them.
Receivers listen on loopback (the local stage's rule); no test resolves a name or connects to a
refused address.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from chalice.test import Client
from standardwebhooks.webhooks import Webhook

from chalicelib.names import Handler
from chalicelib.services import Services, get_services, use_services
from chalicelib.webhooks import loopback_resolver
from localenv.provision import RegionResources
from localenv.webhook_receiver import LoopbackReceiver
from tests.conftest import MERCHANT, OTHER_MERCHANT, NotifierRun

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def local_stage(resources: RegionResources) -> Iterator[None]:
    """The API and deliverer as ``make run`` serves them: loopback receivers, no name resolved."""
    use_services(None)
    services: Services = get_services()
    from chalicelib.adapters.webhook_sender import HttpWebhookSender

    use_services(
        services._replace(
            settings=services.settings._replace(local_stage=True),
            resolve=loopback_resolver,
            webhook_sender=HttpWebhookSender(resolve=loopback_resolver, allow_loopback=True),
        )
    )
    yield
    use_services(None)


def register(client: Client, url: str) -> dict[str, Any]:
    body = {"url": url, "events": ["payment.processed", "payment.rejected"]}
    answer = client.http.post("/webhook-endpoints", headers=JSON, body=json.dumps(body))
    assert answer.status_code == 201, answer.json_body
    return dict(answer.json_body)


def pay(client: Client, transaction_id: str) -> None:
    body = {"transaction_id": transaction_id, "customer_id": "c-1", "amount": "12.00", "currency": "USD"}
    assert client.http.post("/process", headers=JSON, body=json.dumps(body)).status_code == 201


def drain(client: Client, aws: Any, resources: RegionResources, *, rounds: int = 3) -> list[str]:
    """Hand the webhook queue's messages to the deliverer until it is empty (delays honoured by SQS)."""
    sqs, seen = aws("sqs"), []
    for _ in range(rounds):
        messages = sqs.receive_message(QueueUrl=resources.webhook_queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        if not messages:
            break
        event = client.events.generate_sqs_event(
            message_bodies=[m["Body"] for m in messages], queue_name="payment-webhook-deliveries-test"
        )
        result = client.lambda_.invoke(Handler.WEBHOOK_DELIVERER, event).payload
        assert result == {"batchItemFailures": []}, result
        for m in messages:
            sqs.delete_message(QueueUrl=resources.webhook_queue_url, ReceiptHandle=m["ReceiptHandle"])
        seen += [m["Body"] for m in messages]
    return seen


def test_a_payment_reaches_its_clients_receiver_signed_and_no_other_clients(
    client: Client,
    other_client: Client,
    aws: Any,
    resources: RegionResources,
    notifier: NotifierRun,
    local_stage: None,
) -> None:
    mine, theirs = LoopbackReceiver(), LoopbackReceiver()
    try:
        endpoint = register(client, mine.url)
        register(other_client, theirs.url)
        pay(client, "order-77")
        notifier.deliver()  # the stream -> transactions topic -> the webhook queue
        drain(client, aws, resources)
    finally:
        mine.close()
        theirs.close()

    [(headers, body)] = [(a.headers, a.body) for a in mine.arrivals]
    event = Webhook(endpoint["secret"]).verify(body, headers)
    assert event["event"] == "payment.processed" and event["client"] == MERCHANT
    assert event["payment"]["transaction_id"] == "order-77"
    assert headers["webhook-id"] == event["id"]
    assert theirs.arrivals == []
    assert OTHER_MERCHANT not in body


def test_a_failed_delivery_is_retried_later_with_the_same_webhook_id(
    client: Client, aws: Any, resources: RegionResources, notifier: NotifierRun, local_stage: None
) -> None:
    receiver = LoopbackReceiver(503)
    try:
        register(client, receiver.url)
        pay(client, "order-78")
        notifier.deliver()
        drain(client, aws, resources)
        # The retry waits in the queue (5 s for the second attempt): deliver it as its time comes.
        time.sleep(6)
        drain(client, aws, resources)
    finally:
        receiver.close()

    ids = [a.headers["webhook-id"] for a in receiver.arrivals]
    assert len(ids) == 2 and len(set(ids)) == 1


def test_a_410_disables_the_endpoint_at_once(
    client: Client, aws: Any, resources: RegionResources, notifier: NotifierRun, local_stage: None
) -> None:
    receiver = LoopbackReceiver(410)
    try:
        register(client, receiver.url)
        pay(client, "order-79")
        notifier.deliver()
        drain(client, aws, resources)
        pay(client, "order-80")
        notifier.deliver()
        drain(client, aws, resources)
    finally:
        receiver.close()

    [endpoint] = client.http.get("/webhook-endpoints").json_body["endpoints"]
    assert len(receiver.arrivals) == 1
    assert endpoint["status"] == "disabled" and "410" in endpoint["disabled_reason"]


def replay(client: Client, endpoint_id: str, since: float) -> dict[str, Any]:
    body = {"from": datetime.fromtimestamp(since, UTC).isoformat()}
    answer = client.http.post(f"/webhook-endpoints/{endpoint_id}/replay", headers=JSON, body=json.dumps(body))
    assert answer.status_code == 202, answer.json_body
    return dict(answer.json_body)


def test_a_replay_resends_the_ranges_events_as_first_sent_and_only_the_clients(
    client: Client,
    other_client: Client,
    aws: Any,
    resources: RegionResources,
    notifier: NotifierRun,
    local_stage: None,
) -> None:
    receiver = LoopbackReceiver()
    try:
        endpoint = register(client, receiver.url)
        pay(client, "order-before")
        time.sleep(0.01)
        since = time.time()
        for n in range(3):
            pay(client, f"order-in-{n}")
        pay(other_client, "theirs-in")
        notifier.deliver()
        drain(client, aws, resources)
        first = {a.headers["webhook-id"]: a.body for a in receiver.arrivals}
        receiver.arrivals.clear()

        replay(client, endpoint["id"], since)
        drain(client, aws, resources, rounds=10)
    finally:
        receiver.close()

    again = {a.headers["webhook-id"]: a for a in receiver.arrivals}
    paid = {json.loads(a.body)["payment"]["transaction_id"] for a in again.values()}
    assert paid == {"order-in-0", "order-in-1", "order-in-2"}
    assert len(receiver.arrivals) == 3
    for event_id, arrival in again.items():
        # The event as it was first delivered: its id, its body, verifying with the endpoint's secret.
        assert arrival.body == first[event_id]
        assert Webhook(endpoint["secret"]).verify(arrival.body, arrival.headers)["id"] == event_id


def test_a_new_replay_of_an_endpoint_supersedes_the_one_queued(
    client: Client, aws: Any, resources: RegionResources, notifier: NotifierRun, local_stage: None
) -> None:
    receiver = LoopbackReceiver()
    try:
        endpoint = register(client, receiver.url)
        since = time.time() - 1
        pay(client, "order-once")
        notifier.deliver()
        drain(client, aws, resources)
        receiver.arrivals.clear()

        replay(client, endpoint["id"], since)
        replay(client, endpoint["id"], since)
        drain(client, aws, resources, rounds=10)
    finally:
        receiver.close()

    assert [json.loads(a.body)["payment"]["transaction_id"] for a in receiver.arrivals] == ["order-once"]
