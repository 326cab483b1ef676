"""Cost per million payments at list prices (``bench/prices.json``, dated), ours against the seed.

Inputs are measured in the same run by :mod:`bench.requests_per_payment`: requests per payment
by API, and handler time per payment for each function (timed against moto on loopback, so a
stand-in for real AWS latency, applied alike to both designs). Metrics: the seed makes a
PutMetricData request per function per payment; ours writes embedded-metric-format log lines,
charged as log ingestion.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chalicelib.names import FUNCTIONS, LAMBDA_ARCHITECTURE, Handler

PRICES = Path(__file__).resolve().parent / "prices.json"
EMF_LINE_BYTES = 330  # one embedded-metric-format line, measured from the handlers' output
WRITE_UNITS = {
    "dynamodb:TransactWriteItems": 4,
    "dynamodb:PutItem": 1,
}  # per payment, 2 items x 2 for transactions
MEMORY_GB = {
    "validate": FUNCTIONS[Handler.API].memory_mb / 1024,
    "process": FUNCTIONS[Handler.PAYMENT_PROCESSOR].memory_mb / 1024,
    "notify": FUNCTIONS[Handler.PAYMENT_NOTIFIER].memory_mb / 1024,
}
INVOCATIONS_PER_PAYMENT = {"validate": 1.0, "process": 0.1, "notify": 0.01}  # batches of 10 and of up to 100


def per_million(
    requests: dict[str, float], handler_ms: dict[str, float], *, emf: bool, arm64: bool
) -> dict[str, float]:
    """Dollars per million payments, by line item; ``arm64``: the functions run on Graviton."""
    prices = json.loads(PRICES.read_text())
    gb_second = prices["lambda_arm64_gb_second_usd" if arm64 else "lambda_gb_second_usd"]
    million = 1_000_000
    lines = {
        "API Gateway": prices["api_gateway_rest_per_million_requests_usd"],
        "Lambda requests": sum(INVOCATIONS_PER_PAYMENT[f] for f in handler_ms)
        * prices["lambda_per_million_requests_usd"],
        "Lambda duration": sum(ms / 1000 * MEMORY_GB[f] for f, ms in handler_ms.items())
        * million
        * gb_second,
        "DynamoDB writes": sum(WRITE_UNITS.get(api, 0) * n for api, n in requests.items())
        * prices["dynamodb_on_demand_per_million_write_units_usd"],
        "SQS": sum(n for api, n in requests.items() if api.startswith("sqs:"))
        * prices["sqs_standard_per_million_requests_usd"],
        # One billed publish per payment whether sent alone or in a batch of ten.
        "SNS": (1.0 if any(api.startswith("sns:") for api in requests) else 0.0)
        * prices["sns_per_million_publishes_usd"],
        "CloudWatch metrics": requests.get("cloudwatch:PutMetricData", 0.0)
        * million
        / 1000
        * prices["cloudwatch_put_metric_data_per_thousand_requests_usd"],
        "CloudWatch logs (EMF)": (
            sum(INVOCATIONS_PER_PAYMENT[f] for f in handler_ms)
            * EMF_LINE_BYTES
            * million
            / 1e9
            * prices["cloudwatch_logs_ingestion_per_gb_usd"]
        )
        if emf
        else 0.0,
    }
    lines["total"] = sum(lines.values())
    return lines


def run(measured: dict[str, Any]) -> dict[str, Any]:
    """Cost lines of both designs from a :func:`bench.requests_per_payment.run` result."""
    ours = per_million(
        measured["ours"], measured["ours_handler_ms"], emf=True, arm64=LAMBDA_ARCHITECTURE == "arm64"
    )
    # The seed design leaves the architecture at Lambda's default, x86_64.
    seed = per_million(measured["seed"], measured["seed_handler_ms"], emf=False, arm64=False)
    return {
        "as_of": json.loads(PRICES.read_text())["as_of"],
        "ours": ours,
        "seed": seed,
        "ratio": ours["total"] / seed["total"],
    }
