"""``payments-dr reannounce``: what a region stored in a range, published again with its first event ids."""

from __future__ import annotations

import json
from typing import Any

from chalice.test import Client

from localenv.provision import RegionResources
from operations.reannounce import reannounce
from operations.targets import Target
from tests.conftest import REGION, TopicSpy


def pay(client: Client, transaction_id: str) -> dict[str, Any]:
    body = {"transaction_id": transaction_id, "customer_id": "c-1", "amount": "5.00", "currency": "USD"}
    response = client.http.post(
        "/process", headers={"Content-Type": "application/json"}, body=json.dumps(body)
    )
    assert response.status_code == 201
    return dict(response.json_body)


def test_what_was_stored_in_the_range_is_announced_again_with_the_event_ids_it_first_had(
    client: Client, aws: Any, operator: Target, resources: RegionResources, transactions_topic: TopicSpy
) -> None:
    before = pay(client, "order-before")
    inside = [pay(client, f"order-{n}") for n in range(3)]
    first = {m["payment"]["transaction_id"]: m["id"] for m in transactions_topic.messages()}
    since = inside[0]["timestamp"]
    until = inside[-1]["timestamp"] + 1

    report = reannounce(operator, REGION, since_ms=since, until_ms=until)
    again = transactions_topic.messages()

    assert (report.found, report.published, report.failed) == (3, 3, 0)
    assert sorted(m["payment"]["transaction_id"] for m in again) == ["order-0", "order-1", "order-2"]
    assert all(m["id"] == first[m["payment"]["transaction_id"]] for m in again)
    assert before["transaction_id"] not in {m["payment"]["transaction_id"] for m in again}


def test_a_dry_run_counts_and_publishes_nothing(
    client: Client, operator: Target, resources: RegionResources, transactions_topic: TopicSpy
) -> None:
    paid = pay(client, "order-dry")
    transactions_topic.messages()

    report = reannounce(
        operator, REGION, since_ms=paid["timestamp"], until_ms=paid["timestamp"] + 1, dry_run=True
    )

    assert (report.found, report.published) == (1, 0)
    assert transactions_topic.messages() == []
