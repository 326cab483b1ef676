"""The notifier's use case: announce what this region stored, from the payments table's stream (the outbox)."""

from __future__ import annotations

from typing import Any

from chalicelib.observability import (
    Metric,
    count,
    logger,
)
from chalicelib.outbox import announcements_in, failed_positions
from chalicelib.services import Services


def announce_processed_payments(stream_event: dict[str, Any], services: Services) -> dict[str, Any]:
    """The notifier: announce the payments and rejections this region stored, from the table's stream.

    Returns a partial batch response naming the stream positions that could not be published,
    so Lambda retries from the first of them and nothing before it is published again.
    """
    announcements = announcements_in(stream_event, services.settings.region)
    if not announcements:
        return {"batchItemFailures": []}
    failed = services.notifications.announce([a.item for a in announcements])
    count(Metric.ANNOUNCED, len(announcements) - len(failed))
    if failed:
        count(Metric.ANNOUNCE_FAILED, len(failed))
        logger.warning("payment notifications not published", extra={"failed": len(failed)})
    return {"batchItemFailures": [{"itemIdentifier": p} for p in failed_positions(announcements, failed)]}
