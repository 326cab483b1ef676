"""Structured logs and embedded-format metrics shared by every handler.

Logs are JSON lines with a correlation id (Powertools Logger). Every line passes through
:func:`chalicelib.cards.redact_pans` on its way out, so a card number that reaches a log call by
mistake is still never written. Metrics are CloudWatch embedded metric format printed to the
log, flushed once per invocation: no ``PutMetricData`` request per payment.
"""

from __future__ import annotations

from logging import LogRecord
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.metrics import MetricUnit

from chalicelib.cards import redact_pans
from chalicelib.metrics import METRICS_NAMESPACE, Metric
from chalicelib.names import SERVICE_NAME

__all__ = [
    "CLIENT_LOG_KEY",
    "Metric",
    "add_dimension",
    "count",
    "flush_metrics",
    "logger",
    "metrics",
    "milliseconds",
    "report_dependency_failure",
]


class PanRedactingFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON formatter with card-number-like digit runs masked in the whole line."""

    def serialize(self, log: LogRecord | dict[str, Any]) -> str:  # type: ignore[override]
        return redact_pans(super().serialize(log))  # type: ignore[arg-type]


logger = Logger(service=SERVICE_NAME, logger_formatter=PanRedactingFormatter())
# Every log line of a request names the client it came from (by name, never by key).
CLIENT_LOG_KEY = "client"
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)


def count(metric: str, value: int = 1) -> None:
    """Add ``value`` to a count metric of the current invocation."""
    metrics.add_metric(name=metric, unit=MetricUnit.Count, value=value)


def milliseconds(metric: str, value: float) -> None:
    """Record a duration metric of the current invocation."""
    metrics.add_metric(name=metric, unit=MetricUnit.Milliseconds, value=value)


def add_dimension(name: str, value: str) -> None:
    """A dimension on every metric this invocation writes (cleared when they are flushed)."""
    metrics.add_dimension(name=name, value=value)


def flush_metrics() -> None:
    """Write the invocation's metrics as one embedded-format log line, if there are any."""
    if metrics.metric_set:
        metrics.flush_metrics()


def report_dependency_failure(error: BaseException, dependency: str = "unknown") -> None:
    """Log once what failed behind ``error`` (never a body) and count it as misconfiguration or load.

    Misconfiguration (access denied, a resource that is not there, a request AWS refuses) is an
    error that pages through its own alarm; load (throttling, timeouts, 5xx) is a warning.
    """
    from chalicelib.failures import MISCONFIGURATION, cause_of

    cause = cause_of(error, dependency)
    if cause.kind == MISCONFIGURATION:
        count(Metric.DEPENDENCY_MISCONFIGURED)
        logger.error("dependency misconfigured", extra=cause.to_log())
    else:
        count(Metric.DEPENDENCY_OVERLOADED)
        logger.warning("dependency unavailable", extra=cause.to_log())
