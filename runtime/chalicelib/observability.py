"""Structured logs and embedded-format metrics shared by every handler.

Logs are JSON lines with a correlation id (Powertools Logger). Every line passes through
:func:`chalicelib.cards.redact_pans` on its way out, so a card number that reaches a log call by
mistake is still never written. Metrics are CloudWatch embedded metric format printed to the
log, flushed once per invocation: no ``PutMetricData`` request per payment.
"""

from __future__ import annotations

from logging import LogRecord

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.metrics import MetricUnit

from chalicelib.cards import redact_pans
from chalicelib.names import METRICS_NAMESPACE, SERVICE_NAME


class Metric:
    """Names of the custom metrics the functions emit."""

    VALIDATED = "PaymentValidated"
    REJECTED = "PaymentRejected"
    FRAUD_FLAGGED = "PaymentFraudFlagged"
    PROCESSED = "PaymentProcessed"
    DUPLICATE = "PaymentDuplicate"
    # Queued payments that can never be processed: recorded and announced, never retried.
    REJECTED_IN_PROCESSING = "PaymentRejectedInProcessing"
    PROCESSING_FAILED = "PaymentProcessingFailed"
    ANNOUNCED = "PaymentAnnounced"
    ANNOUNCE_FAILED = "PaymentAnnounceFailed"
    FAILOVER_SIGNAL = "FailoverSignal"
    FAILOVER_EXECUTED = "FailoverExecuted"
    FAILOVER_REFUSED = "FailoverRefused"


class PanRedactingFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON formatter with card-number-like digit runs masked in the whole line."""

    def serialize(self, log: LogRecord | dict) -> str:  # type: ignore[override]
        return redact_pans(super().serialize(log))  # type: ignore[arg-type]


logger = Logger(service=SERVICE_NAME, logger_formatter=PanRedactingFormatter())
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)


def count(metric: str, value: int = 1) -> None:
    """Add ``value`` to a count metric of the current invocation."""
    metrics.add_metric(name=metric, unit=MetricUnit.Count, value=value)


def flush_metrics() -> None:
    """Write the invocation's metrics as one embedded-format log line, if there are any."""
    if metrics.metric_set:
        metrics.flush_metrics()
