"""One cold start, measured inside a fresh interpreter (run by :mod:`bench.cold_start`).

``floor``: ``import boto3, chalice`` and nothing else. ``bare``: the same, then the AWS calls a
payment needs made directly (create the SQS and DynamoDB clients, one SendMessage, two
PutItem: the claim and the record), with no framework, validation, logging or metrics. ``app``: import the
Lambda handler module and serve one ``POST /validate`` and one SQS batch of one message. All
against the local AWS the environment points at. Prints ``cpu_seconds peak_rss_kib`` of the
whole process (peak RSS from /proc, which unlike getrusage does not count the parent before exec).
"""

from __future__ import annotations

import json
import os
import random
import resource
import string
import sys
import time
import uuid
from decimal import Decimal
from typing import Any

# The client the benchmarks' API requests come from: bench.common registers the key id, and each
# event names it as API Gateway names the key it admitted.
BENCH_CLIENT, BENCH_API_KEY_ID = "bench-merchant", "benchkey01"


class Context:
    """The parts of a Lambda context object the handlers read."""

    function_name = "bench"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    aws_request_id = "bench"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


def api_event(
    body: dict[str, str] | None,
    *,
    path: str = "/validate",
    method: str = "POST",
    idempotency_key: str | None = None,
) -> dict[str, object]:
    """An API Gateway proxy event, as the stage delivers a request to the API function."""
    headers = {"Content-Type": "application/json"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": method,
            "requestId": "bench",
            # API Gateway names the key it admitted the request with (bench.common registers it).
            "identity": {"apiKeyId": BENCH_API_KEY_ID},
        },
        "body": None if body is None else json.dumps(body),
        "isBase64Encoded": False,
    }


def sqs_event(body: dict[str, str]) -> dict[str, object]:
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "bench",
                "body": json.dumps(body),
                "attributes": {"ApproximateReceiveCount": "1"},
                # The API names the client of every payment it queues.
                "messageAttributes": {"client": {"stringValue": BENCH_CLIENT, "dataType": "String"}},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:payment-queue-bench",
                "awsRegion": "us-east-1",
            }
        ]
    }


def stream_event(body: dict[str, str]) -> dict[str, object]:
    """The table stream's record of ``body`` processed in this region, as Lambda delivers it."""
    from chalicelib.items import record_attributes
    from chalicelib.payments import PaymentRecord

    region = os.environ["AWS_REGION"]
    record = PaymentRecord(
        transaction_id=body["transaction_id"],
        timestamp=int(time.time() * 1000),
        customer_id=body["customer_id"],
        amount=Decimal(body["amount"]),
        currency=body["currency"],
        status="PROCESSED",
        fraud_review=False,
        region=region,
        client="bench",
    )
    return {
        "Records": [
            {
                "eventID": "1",
                "eventName": "INSERT",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": region,
                "dynamodb": {
                    "NewImage": record_attributes(record),
                    "SequenceNumber": "1",
                    "StreamViewType": "NEW_AND_OLD_IMAGES",
                },
                "eventSourceARN": f"arn:aws:dynamodb:{region}:123456789012:table/payments/stream/1",
            }
        ]
    }


def alarm_event() -> dict[str, object]:
    """An SNS delivery of an alarm's return to OK: the orchestrator reads it and leaves traffic alone."""
    alarm = {
        "AlarmName": "payment-api-5xx-bench",
        "NewStateValue": "OK",
        "OldStateValue": "ALARM",
        "AlarmArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:payment-api-5xx-bench",
    }
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:ops-alerts:1",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": str(uuid.uuid4()),
                    "TopicArn": "arn:aws:sns:us-east-1:123456789012:ops-alerts",
                    "Subject": "OK",
                    "Message": json.dumps(alarm),
                    "Timestamp": "2026-11-29T00:00:00.000Z",
                    "MessageAttributes": {},
                },
            }
        ]
    }


def main(mode: str) -> None:
    if mode in ("floor", "bare"):
        import boto3
        import chalice  # noqa: F401

        if mode == "bare":
            bare_payment(boto3)
    else:
        # Every function imports the same app module; each mode is one function's first event.
        import app

        payment = {
            "transaction_id": "cold-" + "".join(random.choices(string.ascii_lowercase, k=16)),
            "customer_id": "c-1",
            "amount": "10.00",
            "currency": "USD",
        }
        if mode == "api":
            response = app.app(api_event(payment), Context())
            assert response["statusCode"] == 202, response
        elif mode == "processor":
            result = app.process_payment_messages(sqs_event(payment), Context())
            assert result == {"batchItemFailures": []}, result
        elif mode == "notifier":
            result = app.announce_processed_payments(stream_event(payment), Context())
            assert result == {"batchItemFailures": []}, result
        elif mode == "orchestrator":
            app.orchestrate_failover(alarm_event(), Context())
        else:
            raise SystemExit(f"unknown mode {mode}")
    print(f"{time.process_time():.6f} {peak_rss_kib()}")


def peak_rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def bare_payment(boto3: Any) -> None:
    """The AWS requests of one payment, made directly: the least any implementation must do."""
    import os

    region = os.environ["AWS_REGION"]
    sqs = boto3.client("sqs", region_name=region)
    sqs.send_message(QueueUrl=os.environ["PAYMENT_QUEUE_URL"], MessageBody='{"transaction_id": "bare"}')
    dynamodb = boto3.client("dynamodb", region_name=region)
    key = f"bare-{uuid.uuid4().hex}"
    for n in (0, 1):
        dynamodb.put_item(
            TableName=os.environ["PAYMENTS_TABLE_NAME"],
            Item={"transaction_id": {"S": key}, "timestamp": {"N": str(n)}},
        )


if __name__ == "__main__":
    main(sys.argv[1])
