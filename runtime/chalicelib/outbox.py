"""Which changes in the payments table's stream become ``payment.processed`` or ``payment.rejected`` events.

The table is the outbox: a payment's claim is both the payment and the promise to announce it
(one conditional put, :data:`~chalicelib.items.ANNOUNCED_BY`), and the notifier publishes from the
table's stream. A crash between the write and the publish therefore loses nothing (the stream
keeps the change for 24 hours and Lambda retries it), and a redelivered queue message that finds
the payment already claimed writes no second claim, so nothing is announced twice. Pure Python: the images are read in DynamoDB's wire format
(:mod:`chalicelib.items`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from typing import Any, NamedTuple

from chalicelib.items import announced_from_attributes, announced_items_filter, matches_filter
from chalicelib.payments import Announced, Rejection


class Announcement(NamedTuple):
    """A newly stored payment or rejection and its position in the stream (for partial batch failures)."""

    position: str
    item: Announced


def failed_positions(announcements: Sequence[Announcement], failed: Collection[int]) -> list[str]:
    """The stream positions to report as batch item failures, in stream order.

    Lambda resumes a stream batch from the lowest reported position, so announcements after a
    failed one may be published again: subscribers de-duplicate on the event's ``id``, as they
    must for any SNS delivery.
    """
    return [announcements[index].position for index in sorted(failed)]


def announcements_in(stream_event: dict[str, Any], region: str) -> list[Announcement]:
    """The payments and rejections first stored in ``region`` among a stream event's records.

    The event source already filters with the same pattern (:func:`announced_items_filter`);
    applying it here too keeps ``make run`` (which has no event filter) and tests honest.
    """
    pattern = announced_items_filter(region)
    return [
        Announcement(
            position=change["dynamodb"]["SequenceNumber"],
            item=announced_from_attributes(change["dynamodb"]["NewImage"]),
        )
        for change in stream_event.get("Records", [])
        if matches_filter(pattern, change)
    ]


PROCESSED_EVENT = "payment.processed"
REJECTED_EVENT = "payment.rejected"


def event_name(item: Announced) -> str:
    """The event a stored item is announced as on the transactions topic."""
    return REJECTED_EVENT if isinstance(item, Rejection) else PROCESSED_EVENT


def event_id(item: Announced) -> str:
    """The event's id: the same on every publication of it, whichever region or run publishes it.

    Derived from what the event is about (its kind, the client, the transaction id, and for a
    rejection the rejected message), never from when or where it is sent, so a retried batch, a
    redelivery or a later re-announcement carries the id a subscriber has already seen.
    """
    subject = (
        f"{REJECTED_EVENT}:{item.client}:{item.transaction_id}:{item.message_id}"
        if isinstance(item, Rejection)
        else f"{PROCESSED_EVENT}:{item.client}:{item.transaction_id}"
    )
    return "evt_" + hashlib.sha256(subject.encode()).hexdigest()[:32]


def notification_body(item: Announced) -> dict[str, Any]:
    """The message published for a processed payment or a rejected one, naming its client.

    Subscribers serve many clients: the client is in the body and in the ``client`` message
    attribute (for subscription filter policies); a transaction id is unique only per client.
    Every publication of one event carries one ``id`` (:func:`event_id`): subscribers deduplicate
    on it.
    """
    if isinstance(item, Rejection):
        return {
            "id": event_id(item),
            "event": REJECTED_EVENT,
            "client": item.client,
            "rejection": item.to_json(),
        }
    return {"id": event_id(item), "event": PROCESSED_EVENT, "client": item.client, "payment": item.to_json()}
