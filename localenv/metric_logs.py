"""Local stand-in for CloudWatch turning the functions' embedded-metric-format logs into metrics.

In AWS a log line in the embedded metric format (EMF) becomes metric data in the function's
region, with no call from the function. Locally the functions print to the console, so each
process that runs them writes through :class:`FunctionOutput`: it masks card numbers in
everything printed, passes it on, and hands each EMF document to a sender that puts its metrics
into the region's local CloudWatch once a second, off the request's path as in AWS. Reads of
those metrics (``payments-dr status``'s share of payments, the alarms) then work locally too.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol, TextIO

from chalicelib.cards import redact_pans
from chalicelib.names import EnvVar
from localenv.provision import local_client

FORWARD_INTERVAL_SECONDS = 1.0
# PutMetricData's limit of metric data per request.
PUT_BATCH = 1000


def metric_data(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The ``(namespace, MetricDatum)`` pairs of one EMF document, as CloudWatch extracts them.

    Each metric is recorded under every dimension set the document declares, with the
    dimensions' values read from the document's top level; a value may be one number or a list.
    """
    directives = document.get("_aws", {})
    timestamp = directives.get("Timestamp")
    for directive in directives.get("CloudWatchMetrics", []):
        for dimension_set in directive.get("Dimensions", []) or [[]]:
            dimensions = [{"Name": name, "Value": str(document[name])} for name in dimension_set]
            for metric in directive.get("Metrics", []):
                values = document.get(metric["Name"])
                for value in values if isinstance(values, list) else [values]:
                    if isinstance(value, int | float):
                        datum: dict[str, Any] = {
                            "MetricName": metric["Name"],
                            "Dimensions": dimensions,
                            "Value": float(value),
                            "Unit": metric.get("Unit", "None"),
                        }
                        if timestamp is not None:
                            datum["Timestamp"] = timestamp / 1000
                        yield directive["Namespace"], datum


def emf_document(text: str) -> dict[str, Any] | None:
    """The EMF document printed as ``text``, or None when it is any other output."""
    stripped = text.strip()
    if not stripped.startswith("{") or '"_aws"' not in stripped:
        return None
    try:
        document = json.loads(stripped)
    except ValueError:
        return None
    return (
        document if isinstance(document, dict) and "CloudWatchMetrics" in document.get("_aws", {}) else None
    )


class MetricSink(Protocol):
    """Where :class:`FunctionOutput` hands the EMF documents it sees."""

    def add(self, document: dict[str, Any]) -> None: ...


class MetricForwarder:
    """Puts the EMF documents it is given into a region's CloudWatch from a background thread."""

    def __init__(self, cloudwatch: Callable[[], Any], interval: float = FORWARD_INTERVAL_SECONDS) -> None:
        self._cloudwatch = cloudwatch
        self._interval = interval
        self._documents: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, daemon=True, name="emf-forwarder")
        self._thread.start()

    def add(self, document: dict[str, Any]) -> None:
        self._documents.put(document)

    def _run(self) -> None:
        client = None
        while True:
            threading.Event().wait(self._interval)
            by_namespace: dict[str, list[dict[str, Any]]] = {}
            while not self._documents.empty():
                for namespace, datum in metric_data(self._documents.get()):
                    by_namespace.setdefault(namespace, []).append(datum)
            if not by_namespace:
                continue
            try:
                client = client or self._cloudwatch()
                for namespace, data in by_namespace.items():
                    for start in range(0, len(data), PUT_BATCH):
                        client.put_metric_data(
                            Namespace=namespace, MetricData=data[start : start + PUT_BATCH]
                        )
            except Exception as error:  # noqa: BLE001 - metrics are best effort, as a lost log line is
                print(f"metrics not forwarded to local CloudWatch: {type(error).__name__}", flush=True)


class FunctionOutput:
    """The functions' console: card numbers masked, EMF documents also sent on as metrics."""

    def __init__(self, target: TextIO, forwarder: MetricSink | None = None) -> None:
        self._target = target
        self._forwarder = forwarder

    def write(self, text: str) -> int:
        if self._forwarder is not None and (document := emf_document(text)) is not None:
            self._forwarder.add(document)
        self._target.write(redact_pans(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


def capture_function_output(environ: Mapping[str, str] = os.environ) -> None:
    """Route this process's output through :class:`FunctionOutput` for the region it runs in.

    Metrics go in with an operator's credentials: a fault injected into the functions' own
    calls does not stop CloudWatch from reading their logs.
    """
    endpoint, region = environ.get("AWS_ENDPOINT_URL"), environ.get(EnvVar.REGION)
    forwarder = (
        MetricForwarder(lambda: local_client("cloudwatch", endpoint, region, operator=True))
        if endpoint and region
        else None
    )
    sys.stdout = FunctionOutput(sys.stdout, forwarder)
    sys.stderr = FunctionOutput(sys.stderr)
