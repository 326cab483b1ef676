"""One cold start, measured inside a fresh interpreter (run by :mod:`bench.cold_start`).

``floor``: ``import boto3, chalice`` and nothing else. ``app``: import the Lambda handler module
and serve one ``POST /validate`` and one SQS batch of one message against the local AWS the
environment points at. Prints ``cpu_seconds max_rss_kib`` (CPU time of the whole process).
"""

from __future__ import annotations

import json
import resource
import sys
import time
import uuid


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
        "requestContext": {"resourcePath": "/validate", "httpMethod": "POST", "requestId": "bench", "identity": {}},
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
    if mode == "floor":
        import boto3  # noqa: F401
        import chalice  # noqa: F401
    else:
        import app

        payment = {"transaction_id": f"cold-{uuid.uuid4().hex[:12]}", "customer_id": "c-1", "amount": "10.00",
                   "currency": "USD"}
        response = app.app(api_event(payment), Context())
        assert response["statusCode"] == 202, response
        result = app.process_payment_messages(sqs_event(payment), Context())
        assert result == {"batchItemFailures": []}, result
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"{time.process_time():.6f} {usage.ru_maxrss}")


if __name__ == "__main__":
    main(sys.argv[1])
