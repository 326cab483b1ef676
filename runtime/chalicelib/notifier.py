"""The notifier's use case: announce what this region stored, from the payments table's stream (the outbox)."""

from __future__ import annotations

from typing import Any

from chalicelib.errors import DependencyUnavailable
from chalicelib.observability import (
    Metric,
    count,
    logger,
    report_dependency_failure,
)
from chalicelib.outbox import announcements_in, failed_positions
from chalicelib.payments import PaymentRecord
from chalicelib.services import Services


def announce_processed_payments(stream_event: dict[str, Any], services: Services) -> dict[str, Any]:
    """The notifier: announce the payments and rejections this region stored, from the table's stream.

    Returns a partial batch response naming the stream positions that could not be published,
    so Lambda retries from the first of them and nothing before it is published again.
    """
    announcements = announcements_in(stream_event, services.settings.region)
    if not announcements:
        return {"batchItemFailures": []}
    # A request answers a payment as made once its claim is stored: a record it could not write
    # then is written here, before the payment is announced; failing, the batch is retried.
    try:
        services.repository.complete_records(
            [a.item for a in announcements if isinstance(a.item, PaymentRecord)]
        )
    except DependencyUnavailable as error:
        report_dependency_failure(error)
        return {"batchItemFailures": [{"itemIdentifier": announcements[0].position}]}
    failed = services.notifications.announce([a.item for a in announcements])
    count(Metric.ANNOUNCED, len(announcements) - len(failed))
    if failed:
        count(Metric.ANNOUNCE_FAILED, len(failed))
        logger.warning("payment notifications not published", extra={"failed": len(failed)})
    return {"batchItemFailures": [{"itemIdentifier": p} for p in failed_positions(announcements, failed)]}
