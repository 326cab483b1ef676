"""Every crash window of the payment write path: claim (conditional put), then record (conditional put).

A failure is injected on the wire, between the two writes: a botocore ``before-send`` hook answers
the record's ``PutItem`` with an access-denied error (nothing is retried by botocore). The payment
is made from its claim on: the request answers it as made, and the notifier, from the claim's
stream record, writes the record before announcing it; a retry or a redelivery finds the claim.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from chalice.test import Client

from chalicelib import adapters, sdk
from chalicelib.failover_numbers import PAYMENT_CALL_ATTEMPTS
from chalicelib.items import is_payment_record, scoped
from chalicelib.names import Handler
from chalicelib.services import get_services, use_services
from localenv.provision import RegionResources
from tests.conftest import MERCHANT, REGION, NotifierRun, TopicSpy
from tests.handlers.test_faults import ACCESS_DENIED, WRITE_CONFLICT, _Body, message

JSON_HEADERS = {"Content-Type": "application/json"}
PAYMENT = {"transaction_id": "txn-crash", "customer_id": "cust-c", "amount": "8.00", "currency": "USD"}


class CrashAfterTheClaim:
    """The payments table's client, dying on chosen ``PutItem`` requests while ``on``.

    ``writes``: which items to fail, by sort key: ``record`` (any but the claim's 0) or ``claim``.
    """

    def __init__(self, writes: str = "record", answer: tuple[int, bytes] = ACCESS_DENIED) -> None:
        self.on = True
        self.writes = writes
        self.answer = answer
        self.failed = 0

    def client(self, *_: Any) -> Any:
        client = sdk.make_client("dynamodb", REGION)

        def crash(request: Any, **_: Any) -> AWSResponse | None:
            item = json.loads(request.body)["Item"]
            is_claim = item["timestamp"]["N"] == "0"
            if not self.on or is_claim != (self.writes == "claim"):
                return None
            self.failed += 1
            status, body = self.answer
            return AWSResponse(request.url, status, HTTPHeaders(), _Body(body))

        client.meta.events.register("before-send.dynamodb.PutItem", crash)
        return client

    def install(self, resources: RegionResources) -> None:
        use_services(
            get_services()._replace(
                repository=adapters.DynamoPaymentRepository(
                    table_name=resources.payments_table, client=self.client, sleep=lambda _: None
                )
            )
        )


def items_of(aws: Any, resources: RegionResources, transaction_id: str) -> list[dict[str, Any]]:
    response = aws("dynamodb").query(
        TableName=resources.payments_table,
        KeyConditionExpression="transaction_id = :t",
        ExpressionAttributeValues={":t": {"S": scoped(MERCHANT, transaction_id)}},
        ConsistentRead=True,
    )
    return list(response["Items"])


def records_of(aws: Any, resources: RegionResources, transaction_id: str) -> list[dict[str, Any]]:
    return [item for item in items_of(aws, resources, transaction_id) if is_payment_record(item)]


def process(client: Client, body: dict[str, Any]) -> Any:
    return client.http.post("/process", headers=JSON_HEADERS, body=json.dumps(body))


def test_a_record_lost_after_the_claim_is_answered_as_made_and_written_by_the_notifier(
    client: Client, aws: Any, resources: RegionResources, transactions_topic: TopicSpy
) -> None:
    crash = CrashAfterTheClaim()
    crash.install(resources)

    crashed = process(client, PAYMENT)
    records_before_the_notifier = records_of(aws, resources, PAYMENT["transaction_id"])
    crash.on = False
    announced = transactions_topic.messages()  # the notifier runs: the record, then the announcement
    retried = process(client, PAYMENT)

    # Once the claim is stored the payment is made, and answered as made: never a 5xx that could
    # send the caller elsewhere to pay again.
    assert crashed.status_code == 201 and crash.failed == 1
    assert records_before_the_notifier == []
    assert [m["payment"]["transaction_id"] for m in announced] == ["txn-crash"]
    [record] = records_of(aws, resources, PAYMENT["transaction_id"])
    assert record["timestamp"]["N"] == str(crashed.json_body["timestamp"])
    assert (retried.status_code, retried.json_body) == (200, crashed.json_body)
    assert transactions_topic.messages() == []  # announced once
    history = client.http.get(f"/customers/{PAYMENT['customer_id']}/payments").json_body
    assert [p["transaction_id"] for p in history["payments"]] == ["txn-crash"]


def test_a_queued_payment_whose_record_is_lost_is_processed_and_its_record_written_by_the_notifier(
    client: Client, aws: Any, resources: RegionResources, transactions_topic: TopicSpy
) -> None:
    crash = CrashAfterTheClaim()
    crash.install(resources)
    event = message("txn-queued")

    first = client.lambda_.invoke(Handler.PAYMENT_PROCESSOR, event).payload
    crash.on = False
    announced = transactions_topic.messages()

    assert first == {"batchItemFailures": []}
    assert len(records_of(aws, resources, "txn-queued")) == 1
    assert len(items_of(aws, resources, "txn-queued")) == 2  # the claim and one record, nothing else
    assert [m["payment"]["transaction_id"] for m in announced] == ["txn-queued"]


def test_a_conflicting_reuse_after_a_crash_is_a_409_and_completes_the_first_payment(
    client: Client, aws: Any, resources: RegionResources, transactions_topic: TopicSpy
) -> None:
    crash = CrashAfterTheClaim()
    crash.install(resources)
    process(client, PAYMENT)
    crash.on = False

    reused = process(client, {**PAYMENT, "amount": "9.00"})

    assert reused.status_code == 409
    [record] = records_of(aws, resources, PAYMENT["transaction_id"])
    assert record["amount"]["N"] == "8"
    assert len(transactions_topic.messages()) == 1


def test_a_record_already_written_by_a_racing_repair_is_not_an_error_and_not_a_second_record(
    aws: Any, resources: RegionResources, client: Client, transactions_topic: TopicSpy, notifier: NotifierRun
) -> None:
    """The claimant and a repeat both find the record missing: both write it, it exists once."""
    crash = CrashAfterTheClaim()
    crash.install(resources)
    process(client, PAYMENT)
    crash.on = False
    process(client, PAYMENT)  # the repeat repairs the record
    [stored] = records_of(aws, resources, PAYMENT["transaction_id"])
    repository = get_services().repository
    assert isinstance(repository, adapters.DynamoPaymentRepository)

    repository._put_record(stored)  # the claimant, late, writes the record it was writing

    assert records_of(aws, resources, PAYMENT["transaction_id"]) == [stored]
    assert len(transactions_topic.messages()) == 1
    # The record changed once in the table's stream (and so in replication): no second write.
    record_changes = [
        change["eventName"]
        for event in notifier.events
        for change in event["Records"]
        if change["dynamodb"]["Keys"]["timestamp"]["N"] != "0"
    ]
    assert record_changes == ["INSERT"]


def test_a_crash_before_the_claim_leaves_nothing(
    client: Client, aws: Any, resources: RegionResources, transactions_topic: TopicSpy
) -> None:
    crash = CrashAfterTheClaim(writes="claim")
    crash.install(resources)

    crashed = process(client, PAYMENT)

    assert crashed.status_code == 503
    assert items_of(aws, resources, PAYMENT["transaction_id"]) == []
    assert transactions_topic.messages() == []


@pytest.mark.parametrize(("body", "status"), [(PAYMENT, 200), ({**PAYMENT, "amount": "9.00"}, 409)])
def test_a_claim_lost_to_the_other_region_answers_with_the_winners_payment_or_409(
    client: Client, aws: Any, resources: RegionResources, body: dict[str, Any], status: int
) -> None:
    """MRSC: the claim's put conflicts with the other region's write of it, which landed."""
    created = process(client, PAYMENT)  # the winner's write (the table is the same in both regions)
    crash = CrashAfterTheClaim(writes="claim", answer=WRITE_CONFLICT)
    crash.install(resources)

    answered = process(client, body)

    assert created.status_code == 201
    assert (
        crash.failed == PAYMENT_CALL_ATTEMPTS
    )  # the loser's claim met the conflict on each of botocore's attempts
    assert answered.status_code == status
    if status == 200:
        assert answered.json_body == created.json_body
    assert len(records_of(aws, resources, PAYMENT["transaction_id"])) == 1
