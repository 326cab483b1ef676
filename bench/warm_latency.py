"""Warm handler latency in process, with no network: p50 and p99 of /validate and of one message.

Every AWS request is answered inside botocore (a ``before-send`` hook returns a canned
success), so what is timed is the code: ours through the whole Chalice app (routing,
middleware, validation, logging, metrics, adapters) against a bare function that parses the
body and makes the same AWS calls on the same short-circuited clients (the ratio is our
overhead).
"""

from __future__ import annotations

import importlib
import io
import json
import os
import time
from contextlib import redirect_stdout
from typing import Any

import botocore.session
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders

from bench.cold_start_child import BENCH_API_KEY_ID, BENCH_CLIENT, Context, api_event, sqs_event
from bench.common import percentile, unique_id
from chalicelib.regions import RegionFlag

WARMUP = 50
SAMPLES = 1000
CANNED = {
    "SendMessage": b'{"MessageId": "m-1", "MD5OfMessageBody": "x"}',
    "PutItem": b"{}",
    # The request's client, read once per container from the client directory.
    "GetItem": json.dumps(
        {"Item": {"api_key_id": {"S": BENCH_API_KEY_ID}, "client": {"S": BENCH_CLIENT}}}
    ).encode(),
    # /validate reads its region's in-service flag (cached 60 s) before taking a payment.
    "GetParameter": json.dumps({"Parameter": {"Value": RegionFlag(in_service=True).to_text()}}).encode(),
}


class _Body:
    def __init__(self, payload: bytes) -> None:
        self._payload = payload

    def stream(self, **_: Any) -> Any:
        yield self._payload


def answer_locally(request: Any, event_name: str = "", **_: Any) -> AWSResponse:
    operation = event_name.rsplit(".", 1)[-1]
    return AWSResponse(request.url, 200, HTTPHeaders(), _Body(CANNED[operation]))


def short_circuited_session(session: Any) -> Any:
    session.register("before-send", answer_locally)
    return session


def accepted(response: dict[str, Any]) -> None:
    """A timed call must be the path it claims to be, not an error answered quickly (or slowly)."""
    assert response["statusCode"] == 202, response


def timings(call: Any) -> list[float]:
    for _ in range(WARMUP):
        call()
    samples = []
    for _ in range(SAMPLES):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def bare_functions(session: Any) -> tuple[Any, Any]:
    """/validate and the processor reduced to parsing and the same AWS calls."""
    sqs = session.create_client("sqs", region_name="us-east-1", endpoint_url="http://127.0.0.1:9")
    dynamodb = session.create_client("dynamodb", region_name="us-east-1", endpoint_url="http://127.0.0.1:9")

    def validate(event: dict[str, Any]) -> dict[str, Any]:
        body = json.loads(event["body"])
        sqs.send_message(QueueUrl="http://127.0.0.1:9/q", MessageBody=json.dumps(body))
        return {"statusCode": 202, "body": json.dumps({"status": "accepted"})}

    def process(event: dict[str, Any]) -> dict[str, Any]:
        for record in event["Records"]:
            body = json.loads(record["body"])
            item = {"transaction_id": {"S": body["transaction_id"]}, "timestamp": {"N": "1"}}
            # The claim, then the record: the two writes of a payment.
            for sort_key in ("0", "1"):
                dynamodb.put_item(TableName="t", Item={**item, "timestamp": {"N": sort_key}})
        return {"batchItemFailures": []}

    return validate, process


def run() -> dict[str, float]:
    """p50/p99 in ms of ours and of the bare functions, and the p50 ratios."""
    os.environ.update(
        {
            "AWS_REGION": "us-east-1",
            "PAYMENT_QUEUE_URL": "http://127.0.0.1:9/q",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
            "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "x",
        }
    )
    from chalicelib import sdk
    from chalicelib.services import use_services

    sdk.use_session(short_circuited_session(sdk.sdk_session()))
    use_services(None)
    app = importlib.import_module("app")
    bare_validate, bare_process = bare_functions(short_circuited_session(botocore.session.get_session()))

    def body() -> dict[str, str]:
        return {"transaction_id": unique_id("w"), "customer_id": "c-1", "amount": "10.00", "currency": "USD"}

    with redirect_stdout(io.StringIO()):  # the handlers' log lines are formatted and discarded
        series = {
            "ours_validate": timings(lambda: accepted(app.app(api_event(body()), Context()))),
            "bare_validate": timings(lambda: bare_validate(api_event(body()))),
            "ours_process": timings(lambda: app.process_payment_messages(sqs_event(body()), Context())),
            "bare_process": timings(lambda: bare_process(sqs_event(body()))),
        }
    use_services(None)
    sdk.use_session(None)
    figures = {}
    for name, samples in series.items():
        figures[f"{name}_p50_ms"] = percentile(samples, 0.50)
        figures[f"{name}_p99_ms"] = percentile(samples, 0.99)
    for what in ("validate", "process"):
        figures[f"{what}_p50_ratio"] = figures[f"ours_{what}_p50_ms"] / figures[f"bare_{what}_p50_ms"]
    return figures


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
