"""``Idempotency-Key`` on the payment routes, through Chalice's test client over moto."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from chalice.test import Client

from localenv.provision import RegionResources

JSON = {"Content-Type": "application/json"}


def payment(**overrides: Any) -> dict[str, Any]:
    return {
        "transaction_id": "txn-key-1",
        "customer_id": "cust-1",
        "amount": "30.00",
        "currency": "USD",
        **overrides,
    }


def post(client: Client, path: str, body: dict[str, Any], key: str | None) -> Any:
    headers = {**JSON, **({"Idempotency-Key": key} if key is not None else {})}
    return client.http.post(path, headers=headers, body=json.dumps(body))


def queue_depth(aws: Any, resources: RegionResources) -> int:
    attributes = aws("sqs").get_queue_attributes(
        QueueUrl=resources.payment_queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def test_same_key_and_body_replays_the_first_response_and_queues_once(
    client: Client, aws: Any, resources: RegionResources
) -> None:
    first = post(client, "/validate", payment(), key="order-7-attempt")

    again = post(client, "/validate", payment(), key="order-7-attempt")

    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json_body == first.json_body
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"
    assert queue_depth(aws, resources) == 1


def test_same_key_with_a_different_body_is_refused_without_side_effects(
    client: Client, aws: Any, resources: RegionResources
) -> None:
    post(client, "/validate", payment(), key="k-1")

    response = post(client, "/validate", payment(amount="31.00"), key="k-1")

    assert response.status_code == 422
    assert response.json_body["errors"][0]["field"] == "Idempotency-Key"
    assert queue_depth(aws, resources) == 1


def test_process_replays_201_for_the_same_key(client: Client) -> None:
    first = post(client, "/process", payment(), key="charge-1")
    again = post(client, "/process", payment(), key="charge-1")
    # Without the key, the transaction id's own idempotency answers 200 (already processed).
    plain = post(client, "/process", payment(), key=None)

    assert (first.status_code, again.status_code, plain.status_code) == (201, 201, 200)
    assert again.json_body == first.json_body == plain.json_body


def test_keys_are_scoped_to_the_route(client: Client, aws: Any, resources: RegionResources) -> None:
    validated = post(client, "/validate", payment(), key="shared")
    processed = post(client, "/process", payment(), key="shared")

    assert (validated.status_code, processed.status_code) == (202, 201)


def test_a_rejected_request_stores_nothing_so_the_key_can_be_used_again(client: Client) -> None:
    rejected = post(client, "/validate", payment(amount="-1"), key="retry-me")

    accepted = post(client, "/validate", payment(), key="retry-me")

    assert (rejected.status_code, accepted.status_code) == (422, 202)


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9", "tab\there"])
def test_an_unusable_key_is_a_400_naming_the_header(client: Client, key: str) -> None:
    response = post(client, "/validate", payment(), key=key)

    assert response.status_code == 400
    assert response.json_body["errors"][0]["field"] == "Idempotency-Key"


def test_a_process_key_reused_with_another_body_is_refused_without_a_payment(client: Client) -> None:
    post(client, "/process", payment(), key="charge-2")

    reused = post(client, "/process", payment(transaction_id="txn-key-2"), key="charge-2")
    found = client.http.get("/payments/txn-key-2")

    assert reused.status_code == 422
    assert reused.json_body["errors"][0]["field"] == "Idempotency-Key"
    assert found.status_code == 404


def test_keys_expire_after_a_day(aws: Any, resources: RegionResources, client: Client) -> None:
    before = time.time()
    post(client, "/validate", payment(), key="dated")

    [item] = aws("dynamodb").scan(TableName=resources.idempotency_table)["Items"]

    assert item["status_code"]["N"] == "202"
    assert int(before) + 24 * 3600 <= int(item["expiration"]["N"]) <= time.time() + 24 * 3600
