"""Which changes in the payments table's stream become ``payment.processed`` notifications.

The table is the outbox: a payment and the promise to announce it are written in the same
transaction, and the notifier publishes from the table's stream. A crash between the write and
the publish therefore loses nothing (the stream keeps the change for 24 hours and Lambda retries
it), and a redelivered queue message that finds the payment already stored writes nothing, so
nothing is announced twice. Pure Python: the images are read in DynamoDB's wire format
(:mod:`chalicelib.items`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, NamedTuple

from chalicelib.items import Attributes, is_payment_record_of, record_from_attributes
from chalicelib.payments import PaymentRecord

INSERT = "INSERT"


class Announcement(NamedTuple):
    """A newly processed payment and its position in the stream (for partial batch failures)."""

    position: str
    record: PaymentRecord


def is_new_payment_of(region: str, event_name: str, image: Attributes) -> bool:
    """Whether a stream change is a payment first stored in ``region``.

    Only inserts of payment records count: not the claim item written beside each record (it has
    no customer id), and not payments replicated from the peer region, whose own notifier
    announces them; otherwise every payment would be announced once per region.
    """
    return event_name == INSERT and is_payment_record_of(region, image)


def failed_positions(announcements: Sequence[Announcement], failed: Collection[int]) -> list[str]:
    """The stream positions to report as batch item failures, in stream order.

    Lambda resumes a stream batch from the lowest reported position, so announcements after a
    failed one may be published again: subscribers de-duplicate on ``transaction_id``, as they
    must for any SNS delivery.
    """
    return [announcements[index].position for index in sorted(failed)]


def announcements_in(stream_event: dict[str, Any], region: str) -> list[Announcement]:
    """The payments first stored in ``region`` among a DynamoDB stream event's records."""
    found = []
    for change in stream_event.get("Records", []):
        details = change.get("dynamodb") or {}
        image = details.get("NewImage") or {}
        if is_new_payment_of(region, change.get("eventName", ""), image):
            found.append(Announcement(position=details["SequenceNumber"], record=record_from_attributes(image)))
    return found
