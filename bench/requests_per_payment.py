"""AWS requests per payment, end to end (validate -> queue -> process -> notify), by API.

Both designs run the same payments against moto on loopback; every request their code sends is
counted by a botocore hook, per API. The queue is drained the way Lambda's SQS event source
would (batches of ten: one ReceiveMessage and one DeleteMessageBatch per batch, counted as the
event source's and the same for both designs). The table stream that feeds our notifier is
read by Lambda itself, and DynamoDB does not charge for those reads, so it is not counted.
Baseline: the seed's design (:mod:`bench.seed_design`).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import math
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3

from bench.cold_start_child import Context, api_event
from bench.common import REGION, LocalAws, local_aws, unique_id
from bench.write_chains import WriteTimeline, sequential_writes
from localenv.events import sqs_lambda_record
from localenv.metric_logs import emf_document, metric_data
from localenv.streams import TableStream, lambda_stream_event

PAYMENTS = 200
BATCH_SIZE = 10
EVENT_SOURCE_REQUESTS_PER_BATCH = 2  # ReceiveMessage + DeleteMessageBatch, by Lambda's poller
HEALTH_CALLS = 50


@dataclass
class Tally:
    """What one design's handlers did: requests per API, the DynamoDB capacity and storage they used,
    messages published, metrics emitted, log bytes written and the time they took."""

    requests: Counter[str] = field(default_factory=Counter)
    handler_seconds: dict[str, float] = field(default_factory=dict)
    invocations: Counter[str] = field(default_factory=Counter)
    log_bytes: Counter[str] = field(default_factory=Counter)
    write_units: Counter[str] = field(default_factory=Counter)
    replicated_units: Counter[str] = field(default_factory=Counter)
    read_units: dict[str, float] = field(default_factory=dict)
    # Bytes stored, by table and by the item's attribute names (an index stores the items holding its keys).
    stored_bytes: Counter[tuple[str, tuple[str, ...]]] = field(default_factory=Counter)
    # Items put, by the same key: each one holding an index's keys is a write to that index too.
    stored_items: Counter[tuple[str, tuple[str, ...]]] = field(default_factory=Counter)
    # And their bytes by attribute: what an index projecting some attributes only stores.
    stored_attribute_bytes: dict[tuple[str, tuple[str, ...]], Counter[str]] = field(default_factory=dict)
    published: int = 0
    metrics: set[str] = field(default_factory=set)

    def count(self, request: Any = None, event_name: str = "", **_: Any) -> None:
        # event_name: before-send.<service>.<Operation>
        _hook, service, operation = event_name.split(".", 2)
        self.requests[f"{service}:{operation}"] += 1

    def params(self, params: dict[str, Any], event_name: str = "", **_: Any) -> None:
        """The call's parameters (before-parameter-build): capacity, storage, publishes, metrics."""
        _hook, service, operation = event_name.split(".", 2)
        if service == "dynamodb":
            self._dynamodb(operation, params)
        elif service == "sns":
            self.published += len(params.get("PublishBatchRequestEntries", [])) or 1
        elif service == "cloudwatch" and operation == "PutMetricData":
            self.metrics.update(f"{params['Namespace']}/{m['MetricName']}" for m in params["MetricData"])

    def _dynamodb(self, operation: str, params: dict[str, Any]) -> None:
        if operation == "TransactWriteItems":
            for entry in params["TransactItems"]:
                ((kind, action),) = entry.items()
                item = action.get("Item") or action.get("Key", {})
                # A transactional write costs two write units per KB of each item; replicas apply it once.
                self._wrote(table_kind(action["TableName"]), item, units=2, stored=kind == "Put")
        elif operation in ("PutItem", "UpdateItem", "DeleteItem"):
            item = params.get("Item") or {
                **params.get("Key", {}),
                **params.get("ExpressionAttributeValues", {}),
            }
            self._wrote(table_kind(params["TableName"]), item, units=1, stored=operation == "PutItem")
        elif operation in ("GetItem", "Query"):
            strong = params.get("ConsistentRead", False)
            kind = table_kind(params["TableName"])
            self.read_units[kind] = self.read_units.get(kind, 0.0) + (1.0 if strong else 0.5)
        elif operation == "BatchGetItem":
            for table, request in params["RequestItems"].items():
                kind, per_key = table_kind(table), 1.0 if request.get("ConsistentRead") else 0.5
                self.read_units[kind] = self.read_units.get(kind, 0.0) + per_key * len(request["Keys"])

    def _wrote(self, kind: str, item: dict[str, Any], *, units: int, stored: bool) -> None:
        size = item_bytes(item)
        self.write_units[kind] += units * max(1, math.ceil(size / 1024))
        self.replicated_units[kind] += max(1, math.ceil(size / 1024))
        if stored:
            self.stored_bytes[(kind, tuple(sorted(item)))] += size + ITEM_OVERHEAD_BYTES
            self.stored_items[(kind, tuple(sorted(item)))] += 1
            by_attribute = self.stored_attribute_bytes.setdefault((kind, tuple(sorted(item))), Counter())
            for name, value in item.items():
                by_attribute[name] += len(name.encode()) + value_bytes(value)

    def timed(self, name: str, seconds: float, output: int = 0) -> None:
        self.handler_seconds[name] = self.handler_seconds.get(name, 0.0) + seconds
        self.invocations[name] += 1
        self.log_bytes[name] += output

    def per_payment(self, payments: int) -> dict[str, float]:
        return {api: n / payments for api, n in sorted(self.requests.items())}

    def usage(self, payments: int) -> dict[str, Any]:
        """Everything per payment (per call for ``health``), for :mod:`bench.cost`."""
        per = {name: (1 if name == "health" else payments) for name in self.handler_seconds}
        return {
            "requests": self.per_payment(payments),
            "handler_ms": {k: v * 1000 / per[k] for k, v in self.handler_seconds.items()},
            "log_bytes": {k: self.log_bytes[k] / per[k] for k in self.handler_seconds},
            "write_units": {k: v / payments for k, v in self.write_units.items()},
            "replicated_units": {k: v / payments for k, v in self.replicated_units.items()},
            "read_units": {k: v / payments for k, v in self.read_units.items()},
            "stored": [
                {
                    "table": kind,
                    "attributes": list(names),
                    "bytes": size / payments,
                    "items": self.stored_items[(kind, names)] / payments,
                    "attribute_bytes": {
                        name: size / payments
                        for name, size in self.stored_attribute_bytes.get((kind, names), Counter()).items()
                    },
                }
                for (kind, names), size in sorted(self.stored_bytes.items())
            ],
            "published": self.published / payments,
            "metrics": sorted(self.metrics),
        }


# DynamoDB's storage overhead per item (and per item projected into an index).
ITEM_OVERHEAD_BYTES = 100


def table_kind(table_name: str) -> str:
    """``idempotency`` or ``payments``: the cost model prices the two tables' settings apart."""
    return "idempotency" if "idempotency" in table_name else "payments"


def item_bytes(item: dict[str, Any]) -> int:
    """An item's size as DynamoDB bills it: attribute names plus values (numbers about 1 byte per 2 digits)."""
    return sum(len(name.encode()) + value_bytes(value) for name, value in item.items())


def value_bytes(value: dict[str, Any]) -> int:
    """The billed size of one attribute value in DynamoDB's JSON form."""
    ((kind, content),) = value.items()
    if kind == "S":
        return len(str(content).encode())
    if kind == "N":
        return (len(str(content).lstrip("-").replace(".", "")) + 1) // 2 + 1
    if kind == "B":
        return len(content)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_bytes(v) + 1 for k, v in content.items())
    if kind == "L":
        return 3 + sum(value_bytes(v) + 1 for v in content)
    return sum(len(str(v).encode()) for v in content)  # SS, NS, BS


@contextlib.contextmanager
def captured_output() -> Iterator[io.StringIO]:
    """What the handlers write to standard output (log lines, embedded metrics) inside the block."""
    from chalicelib.observability import logger

    buffer = io.StringIO()
    handler = logger.registered_handler
    previous = handler.setStream(buffer)  # type: ignore[attr-defined]
    try:
        with contextlib.redirect_stdout(buffer):
            yield buffer
    finally:
        handler.setStream(previous)  # type: ignore[attr-defined]


def embedded_metrics(output: str) -> set[str]:
    """Each distinct metric (namespace, name, dimensions) in embedded-metric-format lines of ``output``."""
    found: set[str] = set()
    for line in output.splitlines():
        document = emf_document(line)
        for namespace, datum in metric_data(document) if document else ():
            values = ",".join(f"{d['Name']}={d['Value']}" for d in datum["Dimensions"])
            found.add(f"{namespace}/{datum['MetricName']}[{values}]")
    return found


def call(tally: Tally, name: str, handler: Any, *args: Any) -> Any:
    """``handler(*args)``, timed, with its output counted and its embedded metrics noted."""
    with captured_output() as output:
        started = time.perf_counter()
        result = handler(*args)
        seconds = time.perf_counter() - started
    text = output.getvalue()
    tally.timed(name, seconds, len(text.encode()))
    tally.metrics.update(embedded_metrics(text))
    return result


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
        call(tally, name, handle_batch, event, Context())
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )


def run_ours(aws: LocalAws, payments: int, *, idempotency_keys: bool) -> Tally:
    """Our handlers, through the Chalice app as Lambda calls them; ``idempotency_keys``: each request sends one."""
    from chalicelib import sdk
    from chalicelib.services import use_services

    tally = Tally()
    session = sdk.sdk_session()
    session.register("before-send", tally.count)
    session.register("before-parameter-build", tally.params)
    sdk.use_session(session)
    use_services(None)
    app = importlib.import_module("app")
    stream = TableStream(
        table=aws.resources.payments_table,
        dynamodb=boto3.client("dynamodb", region_name=REGION, endpoint_url=aws.endpoint),
        streams=boto3.client("dynamodbstreams", region_name=REGION, endpoint_url=aws.endpoint),
    )
    stream.poll()  # what an earlier run stored is not this run's to announce
    for n in range(payments):
        response = call(
            tally,
            "validate",
            app.app,
            api_event(payment(n), idempotency_key=unique_id("key") if idempotency_keys else None),
            Context(),
        )
        assert response["statusCode"] == 202, response
    drain_queue(aws, app.process_payment_messages, tally, "process")
    records = stream.poll()
    for start in range(0, len(records), 100):
        event = lambda_stream_event(records[start : start + 100], stream.stream_arn, REGION)
        result = call(tally, "notify", app.announce_processed_payments, event, Context())
        assert result == {"batchItemFailures": []}, result
    # Route 53's health checks call /health around the clock, in both regions: priced per call.
    health = Tally()
    session.unregister("before-send", tally.count)
    session.unregister("before-parameter-build", tally.params)
    for _ in range(HEALTH_CALLS):
        response = call(health, "health", app.app, api_event(None, path="/health", method="GET"), Context())
        assert response["statusCode"] == 200, response
    tally.handler_seconds["health"] = health.handler_seconds["health"] / HEALTH_CALLS
    tally.log_bytes["health"] = health.log_bytes["health"] // HEALTH_CALLS
    use_services(None)
    sdk.use_session(None)
    return tally


def run_seed(aws: LocalAws, payments: int) -> Tally:
    """The seed's handlers (:mod:`bench.seed_design`)."""
    # Imported afresh: the seed's clients are made at import, from this run's environment.
    seed = importlib.reload(importlib.import_module("bench.seed_design"))
    tally = Tally()
    for client in (seed.sqs, seed.dynamodb, seed.sns, seed.cloudwatch):
        client.meta.events.register("before-send", tally.count)
        client.meta.events.register("before-parameter-build", tally.params)
    for n in range(payments):
        response = call(tally, "validate", seed.validator_handler, {"body": json.dumps(payment(n))})
        assert response["statusCode"] == 200
    drain_queue(aws, seed.processor_handler, tally, "process")
    return tally


SEQUENCE_SAMPLES = 20


def sequential_writes_ours(samples: int = SEQUENCE_SAMPLES) -> list[int]:
    """Sequential DynamoDB writes of each of ``samples`` keyed ``POST /process`` calls, through the app."""
    from chalicelib import sdk
    from chalicelib.services import use_services

    timeline = WriteTimeline()
    session = sdk.sdk_session()
    timeline.attach(session)
    sdk.use_session(session)
    use_services(None)
    app = importlib.import_module("app")
    chains = []
    for n in range(samples):
        event = api_event(payment(n), path="/process", idempotency_key=unique_id("key"))
        response = app.app(event, Context())
        assert response["statusCode"] == 201, response
        chains.append(sequential_writes(timeline.take()))
    use_services(None)
    sdk.use_session(None)
    return chains


def sequential_writes_seed(aws: LocalAws, samples: int = SEQUENCE_SAMPLES) -> list[int]:
    """Sequential DynamoDB writes of the seed's processor for each of ``samples`` payments, one at a time."""
    seed = importlib.reload(importlib.import_module("bench.seed_design"))
    timeline = WriteTimeline()
    timeline.attach(seed.dynamodb.meta.events)
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=aws.endpoint)
    url = aws.resources.payment_queue_url
    chains = []
    for n in range(samples):
        seed.validator_handler({"body": json.dumps(payment(n))})
        [message] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, MessageAttributeNames=["All"])[
            "Messages"
        ]
        event = {"Records": [sqs_lambda_record(message, "arn:aws:sqs:us-east-1:123456789012:q", REGION)]}
        with captured_output():
            seed.processor_handler(event, Context())
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        chains.append(sequential_writes(timeline.take()))
    return chains


def run(payments: int = PAYMENTS) -> dict[str, Any]:
    """Requests per payment of both designs, per API and in total, and the ratio (ours without an
    Idempotency-Key, as the seed has none; with one beside it), and each design's usage for the cost model."""
    with local_aws() as aws:
        ours = run_ours(aws, payments, idempotency_keys=False)
        # The cost model prices every payment with an Idempotency-Key: what a careful client sends.
        keyed = run_ours(aws, payments, idempotency_keys=True)
        seed = run_seed(aws, payments)
        ours_chains = sequential_writes_ours()
        seed_chains = sequential_writes_seed(aws)
    ours_total = sum(ours.requests.values()) / payments
    seed_total = sum(seed.requests.values()) / payments
    return {
        "payments": payments,
        "ours": ours.per_payment(payments),
        "seed": seed.per_payment(payments),
        "ours_total": ours_total,
        "seed_total": seed_total,
        "ratio": ours_total / seed_total,
        "ours_keyed": keyed.per_payment(payments),
        "ours_keyed_total": sum(keyed.requests.values()) / payments,
        "ours_usage": keyed.usage(payments),
        "ours_plain_usage": ours.usage(payments),
        "seed_usage": seed.usage(payments),
        "sequential_writes": {"ours_keyed_process": max(ours_chains), "seed": max(seed_chains)},
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
