"""The outbox rule: which stream changes become notifications, and what a failure reports."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from chalicelib.outbox import Announcement, announcements_in, event_id, failed_positions, notification_body
from chalicelib.payments import PaymentRecord, Rejection

RECORD_IMAGE = {
    "transaction_id": {"S": "txn-1"},
    "timestamp": {"N": "1700000000000"},
    "customer_id": {"S": "cust-1"},
    "amount": {"N": "12.50"},
    "currency": {"S": "EUR"},
    "status": {"S": "PROCESSED"},
    "fraud_review": {"BOOL": False},
    "region": {"S": "us-east-1"},
}
CLAIM_IMAGE = {
    "transaction_id": {"S": "txn-1"},
    "timestamp": {"N": "0"},
    "record": {"M": {name: value for name, value in RECORD_IMAGE.items() if name != "transaction_id"}},
    "announced_by": {"S": "us-east-1"},
}


def change(image: dict[str, Any], name: str = "INSERT", sequence: str = "100") -> dict[str, Any]:
    return {"eventName": name, "dynamodb": {"SequenceNumber": sequence, "NewImage": image}}


def test_a_new_payment_claim_of_this_region_is_announced_with_its_stream_position() -> None:
    [announcement] = announcements_in({"Records": [change(CLAIM_IMAGE)]}, "us-east-1")

    assert announcement.position == "100"
    assert announcement.item.transaction_id == "txn-1"
    assert announcement.item.amount == Decimal("12.50")


@pytest.mark.parametrize(
    ("description", "record"),
    [
        ("the record written beside the claim", change(RECORD_IMAGE)),
        (
            "a payment replicated from the peer region",
            change({**CLAIM_IMAGE, "announced_by": {"S": "us-east-2"}}),
        ),
        ("a modification", change(CLAIM_IMAGE, name="MODIFY")),
        ("a removal", {"eventName": "REMOVE", "dynamodb": {"SequenceNumber": "1", "OldImage": CLAIM_IMAGE}}),
    ],
)
def test_nothing_else_is_announced(description: str, record: dict[str, Any]) -> None:
    assert announcements_in({"Records": [record]}, "us-east-1") == [], description


def test_a_rejection_of_this_region_is_announced_as_one() -> None:
    image = {
        "transaction_id": {"S": "txn-1"},
        "timestamp": {"N": "-1700000000000123"},
        "status": {"S": "REJECTED"},
        "region": {"S": "us-east-1"},
        "announced_by": {"S": "us-east-1"},
        "message_id": {"S": "m"},
        "sent_at": {"N": "1700000000000"},
        "rejected_at": {"N": "1700000000100"},
        "errors": {"L": [{"M": {"field": {"S": "f"}, "message": {"S": "m"}}}]},
    }

    [announcement] = announcements_in({"Records": [change(image)]}, "us-east-1")

    assert isinstance(announcement.item, Rejection)
    assert announcement.item.transaction_id == "txn-1"


def test_failed_announcements_are_reported_by_position_in_stream_order() -> None:
    record = PaymentRecord("t", 1, "c", Decimal(1), "USD", "PROCESSED", False, "r", "m")
    announcements = [Announcement(position=str(p), item=record) for p in (10, 20, 30)]

    assert failed_positions(announcements, {2, 1}) == ["20", "30"]
    assert failed_positions(announcements, set()) == []


def payment_of(client: str, transaction_id: str = "txn-1", processed_at: int = 1) -> PaymentRecord:
    return PaymentRecord(
        transaction_id=transaction_id,
        timestamp=processed_at,
        customer_id="c",
        amount=Decimal("1.00"),
        currency="USD",
        status="PROCESSED",
        fraud_review=False,
        region="us-east-1",
        client=client,
    )


def test_an_event_has_one_id_however_and_wherever_it_is_published_again() -> None:
    first = notification_body(payment_of("acme", processed_at=1))
    again = notification_body(payment_of("acme", processed_at=2)._replace(region="us-east-2"))

    assert first["id"] == again["id"] and first["id"].startswith("evt_")


def test_events_of_different_payments_clients_or_rejections_have_different_ids() -> None:
    rejected = Rejection(
        transaction_id="txn-1",
        message_id="m-1",
        sent_at=1,
        rejected_at=2,
        region="r",
        errors=(),
        client="acme",
    )
    ids = {
        event_id(payment_of("acme")),
        event_id(payment_of("bolt")),
        event_id(payment_of("acme", "txn-2")),
        event_id(rejected),
        event_id(rejected._replace(message_id="m-2")),
    }

    assert len(ids) == 5
