"""The local stand-in for CloudWatch's extraction of embedded-metric-format logs."""

from __future__ import annotations

import io
import json
from typing import Any

from localenv.metric_logs import FunctionOutput, emf_document, metric_data

DOCUMENT = {
    "_aws": {
        "Timestamp": 1_700_000_000_000,
        "CloudWatchMetrics": [
            {
                "Namespace": "PaymentProcessing",
                "Dimensions": [["service"]],
                "Metrics": [
                    {"Name": "PaymentProcessed", "Unit": "Count"},
                    {"Name": "Latency", "Unit": "Milliseconds"},
                ],
            }
        ],
    },
    "service": "payments",
    "PaymentProcessed": [1.0, 1.0],
    "Latency": 12.5,
    "cold_start": True,
}


def test_each_value_of_each_metric_becomes_a_datum_under_the_documents_dimensions() -> None:
    data = list(metric_data(DOCUMENT))

    assert [(ns, d["MetricName"], d["Value"]) for ns, d in data] == [
        ("PaymentProcessing", "PaymentProcessed", 1.0),
        ("PaymentProcessing", "PaymentProcessed", 1.0),
        ("PaymentProcessing", "Latency", 12.5),
    ]
    assert all(d["Dimensions"] == [{"Name": "service", "Value": "payments"}] for _, d in data)
    assert {d["Timestamp"] for _, d in data} == {1_700_000_000}
    assert data[2][1]["Unit"] == "Milliseconds"


def test_only_emf_documents_are_taken_for_metrics() -> None:
    assert emf_document(json.dumps(DOCUMENT) + "\n") == DOCUMENT
    assert emf_document('{"level": "INFO", "message": "payment processed"}') is None
    assert emf_document('{"_aws": not json') is None
    assert emf_document("plain text") is None


class Collected:
    def __init__(self) -> None:
        self.documents: list[dict[str, Any]] = []

    def add(self, document: dict[str, Any]) -> None:
        self.documents.append(document)


def test_the_functions_output_is_masked_and_its_metrics_sent_on() -> None:
    console, collected = io.StringIO(), Collected()
    output = FunctionOutput(console, collected)

    output.write("card 4111111111111111 declined\n")
    output.write(json.dumps(DOCUMENT))

    assert "4111111111111111" not in console.getvalue()
    assert collected.documents == [DOCUMENT]
