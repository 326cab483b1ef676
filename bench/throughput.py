"""Throughput of the SQS processor at batch sizes 1 and 10, ours against the seed's design.

Each design's processor handler drains the same number of queued payments from moto on
loopback, one invocation per batch, in one worker: payments per second of handler time. The
seed's processor makes three requests per message; ours makes one (the notification is
published later, in batches, from the table stream).
"""

from __future__ import annotations

import importlib
import json
import time
from typing import Any

import boto3

from bench.cold_start_child import BENCH_CLIENT, Context
from bench.common import REGION, LocalAws, local_aws, unique_id
from localenv.events import sqs_lambda_record

MESSAGES = 200


def fill(aws: LocalAws, count: int, seed_format: bool) -> None:
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=aws.endpoint)
    for start in range(0, count, 10):
        entries = []
        for n in range(start, min(start + 10, count)):
            body: dict[str, Any] = {
                "transaction_id": unique_id("tp"),
                "customer_id": "c-1",
                "amount": "12.00",
                "currency": "USD",
            }
            if seed_format:
                body["fraud_flag"] = False
            entries.append(
                {
                    "Id": str(n - start),
                    "MessageBody": json.dumps(body),
                    # As the API queues a payment: naming its client (the seed's processor ignores it).
                    "MessageAttributes": {"client": {"DataType": "String", "StringValue": BENCH_CLIENT}},
                }
            )
        sqs.send_message_batch(QueueUrl=aws.resources.payment_queue_url, Entries=entries)


def drain(aws: LocalAws, handler: Any, batch_size: int) -> tuple[int, float]:
    """Process the whole queue; returns (messages, seconds spent inside the handler)."""
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=aws.endpoint)
    url = aws.resources.payment_queue_url
    done, busy = 0, 0.0
    while True:
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=batch_size, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            return done, busy
        event = {
            "Records": [
                sqs_lambda_record(m, "arn:aws:sqs:us-east-1:123456789012:q", REGION) for m in messages
            ]
        }
        started = time.perf_counter()
        handler(event, Context())
        busy += time.perf_counter() - started
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )
        done += len(messages)


def run(messages: int = MESSAGES) -> dict[str, float]:
    """Payments per second of handler time, per design and batch size."""
    figures: dict[str, float] = {}
    with local_aws() as aws:
        from chalicelib.services import use_services

        use_services(None)
        app = importlib.import_module("app")
        # Imported afresh: the seed's clients are made at import, from this run's environment.
        seed = importlib.reload(importlib.import_module("bench.seed_design"))

        for batch_size in (1, 10):
            for name, handler, seed_format in (
                ("ours", app.process_payment_messages, False),
                ("seed", seed.processor_handler, True),
            ):
                fill(aws, messages, seed_format)
                done, busy = drain(aws, handler, batch_size)
                figures[f"{name}_batch{batch_size}_per_second"] = done / busy
    for batch_size in (1, 10):
        figures[f"ratio_batch{batch_size}"] = (
            figures[f"ours_batch{batch_size}_per_second"] / figures[f"seed_batch{batch_size}_per_second"]
        )
    return figures


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
