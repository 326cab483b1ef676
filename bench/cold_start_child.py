"""One cold start, measured inside a fresh interpreter (run by :mod:`bench.cold_start`).

``floor``: ``import boto3, chalice`` and nothing else. ``bare``: the same, then the AWS calls a
payment needs made directly (create the SQS and DynamoDB clients, one SendMessage, one
TransactWriteItems), with no framework, validation, logging or metrics. ``app``: import the
Lambda handler module and serve one ``POST /validate`` and one SQS batch of one message. All
against the local AWS the environment points at. Prints ``cpu_seconds peak_rss_kib`` of the
whole process (peak RSS from /proc, which unlike getrusage does not count the parent before exec).
"""

from __future__ import annotations

import json
import random
import resource
import string
import sys
import time
import uuid
from typing import Any


class Context:
    """The parts of a Lambda context object the handlers read."""

    function_name = "bench"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    aws_request_id = "bench"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


def api_event(body: dict[str, str]) -> dict[str, object]:
    return {
        "resource": "/validate",
        "path": "/validate",
        "httpMethod": "POST",
        "headers": {"Content-Type": "application/json"},
        "multiValueHeaders": {"Content-Type": ["application/json"]},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/validate",
            "httpMethod": "POST",
            "requestId": "bench",
            "identity": {},
        },
        "body": json.dumps(body),
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
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:payment-queue-bench",
                "awsRegion": "us-east-1",
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
        import app

        payment = {
            "transaction_id": "cold-" + "".join(random.choices(string.ascii_lowercase, k=16)),
            "customer_id": "c-1",
            "amount": "10.00",
            "currency": "USD",
        }
        response = app.app(api_event(payment), Context())
        assert response["statusCode"] == 202, response
        result = app.process_payment_messages(sqs_event(payment), Context())
        assert result == {"batchItemFailures": []}, result
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
    dynamodb.transact_write_items(
        TransactItems=[
            {
                "Put": {
                    "TableName": os.environ["PAYMENTS_TABLE_NAME"],
                    "Item": {"transaction_id": {"S": key}, "timestamp": {"N": str(n)}},
                }
            }
            for n in (0, 1)
        ]
    )


if __name__ == "__main__":
    main(sys.argv[1])
