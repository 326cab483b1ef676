"""AWS requests per payment, end to end (validate -> queue -> process -> notify), by API.

Both designs run the same payments against moto on loopback; every request their code sends is
counted by a botocore hook, per API. The queue is drained the way Lambda's SQS event source
would (batches of ten: one ReceiveMessage and one DeleteMessageBatch per batch, counted as the
event source's and the same for both designs). The table stream that feeds our notifier is
read by Lambda itself, and DynamoDB does not charge for those reads, so it is not counted.
Baseline: the seed's design (:mod:`bench.seed_design`).
"""

from __future__ import annotations

import importlib
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import boto3

from bench.cold_start_child import Context, api_event
from bench.common import REGION, LocalAws, local_aws, unique_id
from localenv.events import sqs_lambda_record
from localenv.streams import TableStream, lambda_stream_event

PAYMENTS = 200
BATCH_SIZE = 10
EVENT_SOURCE_REQUESTS_PER_BATCH = 2  # ReceiveMessage + DeleteMessageBatch, by Lambda's poller


@dataclass
class Tally:
    """Requests counted per API and the time the handlers took."""

    requests: Counter[str] = field(default_factory=Counter)
    handler_seconds: dict[str, float] = field(default_factory=dict)

    def count(self, request: Any = None, event_name: str = "", **_: Any) -> None:
        # event_name: before-send.<service>.<Operation>
        _hook, service, operation = event_name.split(".", 2)
        self.requests[f"{service}:{operation}"] += 1

    def timed(self, name: str, seconds: float) -> None:
        self.handler_seconds[name] = self.handler_seconds.get(name, 0.0) + seconds

    def per_payment(self, payments: int) -> dict[str, float]:
        return {api: n / payments for api, n in sorted(self.requests.items())}


def payment(n: int) -> dict[str, str]:
    amount = "15000.00" if n % 10 == 0 else "25.00"
    return {"transaction_id": unique_id("rpp"), "customer_id": "c-1", "amount": amount, "currency": "USD"}


def drain_queue(aws: LocalAws, handle_batch: Any, tally: Tally, name: str) -> None:
    """Deliver the queue to ``handle_batch`` ten messages at a time, as Lambda would."""
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=aws.endpoint)
    url = aws.resources.payment_queue_url
    while True:
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=BATCH_SIZE, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            return
        tally.requests["sqs:EventSourcePolling"] += EVENT_SOURCE_REQUESTS_PER_BATCH
        event = {
            "Records": [
                sqs_lambda_record(m, "arn:aws:sqs:us-east-1:123456789012:q", REGION) for m in messages
            ]
        }
        started = time.perf_counter()
        handle_batch(event, Context())
        tally.timed(name, time.perf_counter() - started)
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )


def run_ours(aws: LocalAws, payments: int) -> Tally:
    """Our handlers, through the Chalice app as Lambda calls them."""
    from chalicelib import aws as adapters
    from chalicelib.services import use_services

    tally = Tally()
    session = adapters.sdk_session()
    session.register("before-send", tally.count)
    adapters.use_session(session)
    use_services(None)
    app = importlib.import_module("app")
    stream = TableStream(
        table=aws.resources.payments_table,
        dynamodb=boto3.client("dynamodb", region_name=REGION, endpoint_url=aws.endpoint),
        streams=boto3.client("dynamodbstreams", region_name=REGION, endpoint_url=aws.endpoint),
    )
    for n in range(payments):
        started = time.perf_counter()
        response = app.app(api_event(payment(n)), Context())
        tally.timed("validate", time.perf_counter() - started)
        assert response["statusCode"] == 202, response
    drain_queue(aws, app.process_payment_messages, tally, "process")
    records = stream.poll()
    for start in range(0, len(records), 100):
        event = lambda_stream_event(records[start : start + 100], stream.stream_arn, REGION)
        started = time.perf_counter()
        result = app.announce_processed_payments(event, Context())
        tally.timed("notify", time.perf_counter() - started)
        assert result == {"batchItemFailures": []}, result
    use_services(None)
    adapters.use_session(None)
    return tally


def run_seed(aws: LocalAws, payments: int) -> Tally:
    """The seed's handlers (:mod:`bench.seed_design`)."""
    # Imported afresh: the seed's clients are made at import, from this run's environment.
    seed = importlib.reload(importlib.import_module("bench.seed_design"))
    tally = Tally()
    for client in (seed.sqs, seed.dynamodb, seed.sns, seed.cloudwatch):
        client.meta.events.register("before-send", tally.count)
    for n in range(payments):
        body = payment(n)
        started = time.perf_counter()
        response = seed.validator_handler({"body": json.dumps(body)})
        tally.timed("validate", time.perf_counter() - started)
        assert response["statusCode"] == 200
    drain_queue(aws, seed.processor_handler, tally, "process")
    return tally


def run(payments: int = PAYMENTS) -> dict[str, Any]:
    """Requests per payment of both designs, per API and in total, and the ratio."""
    with local_aws() as aws:
        ours = run_ours(aws, payments)
        seed = run_seed(aws, payments)
    ours_total = sum(ours.requests.values()) / payments
    seed_total = sum(seed.requests.values()) / payments
    return {
        "payments": payments,
        "ours": ours.per_payment(payments),
        "seed": seed.per_payment(payments),
        "ours_total": ours_total,
        "seed_total": seed_total,
        "ratio": ours_total / seed_total,
        "ours_handler_ms": {k: v * 1000 / payments for k, v in ours.handler_seconds.items()},
        "seed_handler_ms": {k: v * 1000 / payments for k, v in seed.handler_seconds.items()},
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
