"""Which changes in the payments table's stream become ``payment.processed`` notifications.

The table is the outbox: a payment and the promise to announce it are written in the same
transaction, and the notifier publishes from the table's stream. A crash between the write and
the publish therefore loses nothing (the stream keeps the change for 24 hours and Lambda retries
it), and a redelivered queue message that finds the payment already stored writes nothing, so
nothing is announced twice. Pure Python: Powertools' stream data classes decode the images
without boto3.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib.items import record_from_item
from chalicelib.names import PaymentsTableSchema as Schema
from chalicelib.payments import PaymentRecord

INSERT = "INSERT"


@dataclass(frozen=True)
class Announcement:
    """A newly processed payment and its position in the stream (for partial batch failures)."""

    position: str
    record: PaymentRecord


def is_new_payment_of(region: str, event_name: str, image: Mapping[str, Any]) -> bool:
    """Whether a stream change is a payment first stored in ``region``.

    Only inserts of payment records count: not the claim item written beside each record (it has
    no customer id), and not payments replicated from the peer region, whose own notifier
    announces them; otherwise every payment would be announced once per region.
    """
    return (
        event_name == INSERT
        and Schema.CUSTOMER_INDEX_PARTITION_KEY in image
        and image.get("region") == region
    )


def failed_positions(announcements: Sequence[Announcement], failed: Collection[int]) -> list[str]:
    """The stream positions to report as batch item failures, in stream order.

    Lambda resumes a stream batch from the lowest reported position, so announcements after a
    failed one may be published again: subscribers de-duplicate on ``transaction_id``, as they
    must for any SNS delivery.
    """
    return [announcements[index].position for index in sorted(failed)]


def announcements_in(stream_event: dict[str, Any], region: str) -> list[Announcement]:
    """The payments first stored in ``region`` among a DynamoDB stream event's records."""
    from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBStreamEvent

    found = []
    for change in DynamoDBStreamEvent(stream_event).records:
        details = change.dynamodb
        image = (details.new_image if details else None) or {}
        event_name = change.event_name.name if change.event_name else ""
        if details and is_new_payment_of(region, event_name, image):
            found.append(Announcement(position=str(details.sequence_number), record=record_from_item(image)))
    return found
