"""``payments-dr redrive``: dead-lettered payments go back to the queue and are processed once."""

from __future__ import annotations

import json
from typing import Any

from chalice.test import Client

from chalicelib.items import is_payment_record, unscoped
from chalicelib.names import Handler
from localenv.events import sqs_lambda_record
from localenv.provision import RegionResources
from operations.redrive import redrive, waiting_messages
from tests.conftest import MERCHANT


def dead_letter(aws: Any, resources: RegionResources, transaction_id: str) -> None:
    body = {"transaction_id": transaction_id, "customer_id": "c-9", "amount": "12.00", "currency": "USD"}
    aws("sqs").send_message(
        QueueUrl=resources.payment_dlq_url,
        MessageBody=json.dumps(body),
        MessageAttributes={
            "correlation_id": {"DataType": "String", "StringValue": f"corr-{transaction_id}"},
            "client": {"DataType": "String", "StringValue": MERCHANT},
        },
    )


def process_queue(client: Client, aws: Any, resources: RegionResources) -> list[str]:
    """Receive what the payment queue holds and run the processor on it, as Lambda would."""
    sqs = aws("sqs")
    messages = sqs.receive_message(
        QueueUrl=resources.payment_queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    ).get("Messages", [])
    records = [
        sqs_lambda_record(m, "arn:aws:sqs:us-east-1:123456789012:payment-queue-test", "us-east-1")
        for m in messages
    ]
    client.lambda_.invoke(Handler.PAYMENT_PROCESSOR, {"Records": records})
    return [json.loads(m["Body"])["transaction_id"] for m in messages]


def stored_payments(aws: Any, resources: RegionResources) -> list[str]:
    items = aws("dynamodb").scan(TableName=resources.payments_table)["Items"]
    return sorted(unscoped(i["transaction_id"]["S"])[1] for i in items if is_payment_record(i))


def test_a_dry_run_counts_and_moves_nothing(aws: Any, resources: RegionResources) -> None:
    dead_letter(aws, resources, "txn-dry")

    report = redrive(
        aws("sqs"), dlq_url=resources.payment_dlq_url, queue_url=resources.payment_queue_url, dry_run=True
    )

    assert (report.waiting, report.moved) == (1, 0)
    assert waiting_messages(aws("sqs"), resources.payment_dlq_url) == 1
    assert waiting_messages(aws("sqs"), resources.payment_queue_url) == 0


def test_redriven_messages_keep_their_attributes_and_are_processed_exactly_once(
    client: Client, aws: Any, resources: RegionResources
) -> None:
    # The same payment dead-lettered twice (a redelivery that also failed) is still one payment.
    for transaction_id in ("txn-r1", "txn-r2", "txn-r1"):
        dead_letter(aws, resources, transaction_id)

    report = redrive(aws("sqs"), dlq_url=resources.payment_dlq_url, queue_url=resources.payment_queue_url)
    queued = aws("sqs").receive_message(
        QueueUrl=resources.payment_queue_url,
        MaxNumberOfMessages=10,
        MessageAttributeNames=["All"],
        VisibilityTimeout=0,
    )["Messages"]
    processed = process_queue(client, aws, resources)
    again = redrive(aws("sqs"), dlq_url=resources.payment_dlq_url, queue_url=resources.payment_queue_url)

    assert (report.waiting, report.moved, report.failed) == (3, 3, 0)
    assert all(m["MessageAttributes"]["correlation_id"]["StringValue"].startswith("corr-") for m in queued)
    assert all(m["MessageAttributes"]["client"]["StringValue"] == MERCHANT for m in queued)
    assert sorted(processed) == ["txn-r1", "txn-r1", "txn-r2"]
    assert stored_payments(aws, resources) == ["txn-r1", "txn-r2"]
    assert (again.waiting, again.moved) == (0, 0)


def test_a_limit_moves_only_that_many(aws: Any, resources: RegionResources) -> None:
    for n in range(3):
        dead_letter(aws, resources, f"txn-l{n}")

    report = redrive(
        aws("sqs"), dlq_url=resources.payment_dlq_url, queue_url=resources.payment_queue_url, limit=2
    )

    assert report.moved == 2
    assert waiting_messages(aws("sqs"), resources.payment_dlq_url) == 1
