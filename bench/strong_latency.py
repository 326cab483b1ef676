"""``POST /process`` latency in strong mode, against the seed design's single put under the same stand-in.

Multi-Region strong consistency (MRSC) answers a write only once another region has it, so every
write a payment waits on costs a cross-region round trip. Both designs run in this process against
the local AWS with its stand-in for an MRSC payments table (:mod:`localenv.moto_fixes`: each write
of a payments table is committed in the peer region, after ``CROSS_REGION_ROUND_TRIP_SECONDS``,
before it is answered):

- ours: the API function serving ``POST /process`` with an Idempotency-Key, as Lambda calls it
  (the key's binding read, the claim, then the record and the binding at once);
- the seed's single put: the ``PutItem`` its processor makes for a payment, timed by botocore's
  events; and, beside it, the seed's processor handling that one payment (put, publish, metric).
"""

from __future__ import annotations

import importlib
import json
import time
from typing import Any

import boto3

from bench.cold_start_child import Context, api_event
from bench.common import REGION, SUFFIX, local_aws, percentile
from bench.requests_per_payment import captured_output, payment
from bench.write_chains import WriteTimeline
from localenv import moto_fixes
from localenv.events import sqs_lambda_record
from localenv.provision import provision_region

SAMPLES = 200
WARM_UP = 10
PEER_REGION = "us-east-2"


def _ours(samples: int) -> list[float]:
    from bench.requests_per_payment import unique_id
    from chalicelib import sdk
    from chalicelib.services import use_services

    sdk.use_session(None)
    use_services(None)
    app = importlib.import_module("app")
    seconds = []
    for n in range(WARM_UP + samples):
        event = api_event(payment(n), path="/process", idempotency_key=unique_id("key"))
        with captured_output():
            started = time.perf_counter()
            response = app.app(event, Context())
            elapsed = time.perf_counter() - started
        assert response["statusCode"] == 201, response
        if n >= WARM_UP:
            seconds.append(elapsed)
    use_services(None)
    return seconds


def _seed(endpoint: str, queue_url: str, samples: int) -> tuple[list[float], list[float]]:
    seed = importlib.reload(importlib.import_module("bench.seed_design"))
    puts = WriteTimeline(round_trip=0.0)
    puts.attach(seed.dynamodb.meta.events)
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=endpoint)
    put_seconds, handler_seconds = [], []
    for n in range(WARM_UP + samples):
        seed.validator_handler({"body": json.dumps(payment(n))})
        [message] = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1)["Messages"]
        event = {"Records": [sqs_lambda_record(message, f"arn:aws:sqs:{REGION}:123456789012:q", REGION)]}
        puts.take()
        started = time.perf_counter()
        seed.processor_handler(event, Context())
        elapsed = time.perf_counter() - started
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        [(began, ended)] = puts.take()
        if n >= WARM_UP:
            put_seconds.append(ended - began)
            handler_seconds.append(elapsed)
    return put_seconds, handler_seconds


def run(samples: int = SAMPLES) -> dict[str, Any]:
    """p50 and p99 in ms of ours and the seed's, and ours over the seed's single put."""
    with local_aws() as aws:
        # The peer's replica, where the stand-in commits each payments-table write first.
        provision_region(aws.endpoint, PEER_REGION, SUFFIX, peer_region=REGION)
        moto_fixes.use_strong_consistency([REGION, PEER_REGION])
        try:
            ours = _ours(samples)
            seed_put, seed_handler = _seed(aws.endpoint, aws.resources.payment_queue_url, samples)
        finally:
            moto_fixes.use_strong_consistency([])
    figures: dict[str, Any] = {
        "samples": samples,
        "round_trip_ms": moto_fixes.CROSS_REGION_ROUND_TRIP_SECONDS * 1000,
    }
    for name, values in (("ours", ours), ("seed_put", seed_put), ("seed_processor", seed_handler)):
        figures[f"{name}_p50_ms"] = percentile(values, 0.50) * 1000
        figures[f"{name}_p99_ms"] = percentile(values, 0.99) * 1000
    figures["p50_ratio"] = figures["ours_p50_ms"] / figures["seed_put_p50_ms"]
    figures["p99_ratio"] = figures["ours_p99_ms"] / figures["seed_put_p99_ms"]
    return figures


def render(figures: dict[str, Any]) -> list[str]:
    """The section of results.md."""
    return [
        (
            f"## `POST /process` in strong mode ({figures['samples']} samples in process, the local AWS's MRSC "
            f"stand-in: {figures['round_trip_ms']:.0f} ms cross-region round trip per payments-table write)"
        ),
        "",
        "| | p50 ms | p99 ms |",
        "|---|---:|---:|",
        f"| **ours: `POST /process` with an Idempotency-Key** | {figures['ours_p50_ms']:.1f} | {figures['ours_p99_ms']:.1f} |",
        f"| seed: its single `PutItem` | {figures['seed_put_p50_ms']:.1f} | {figures['seed_put_p99_ms']:.1f} |",
        f"| seed: its processor, one payment (put, publish, metric) | {figures['seed_processor_p50_ms']:.1f} | {figures['seed_processor_p99_ms']:.1f} |",
        "",
        (
            f"Ours / the seed's single put: **{figures['p50_ratio']:.2f}** at p50, {figures['p99_ratio']:.2f} at "
            "p99. Ours waits on two cross-region commits (the claim, then the record with the key's binding "
            "beside it) where the seed's put waits on one; the seed's put alone makes no payment safe to retry."
        ),
        "",
    ]


if __name__ == "__main__":
    print("\n".join(render(run())))
