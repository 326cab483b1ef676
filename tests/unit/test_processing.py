"""Processing is idempotent on transaction_id: one record, one notification, however often."""

from __future__ import annotations

from decimal import Decimal

import pytest

from chalicelib.errors import TransactionConflict
from chalicelib.payments import PaymentRequest
from chalicelib.processing import process_payment
from tests.fakes import InMemoryPaymentRepository, RecordingNotifications


def payment(amount: str = "42.00", customer: str = "cust-1") -> PaymentRequest:
    return PaymentRequest(transaction_id="txn-1", customer_id=customer, amount=Decimal(amount), currency="USD")


def test_first_submission_writes_one_record_and_publishes_once() -> None:
    repository, notifications = InMemoryPaymentRepository(), RecordingNotifications()

    outcome = process_payment(
        payment(), repository=repository, notifications=notifications, region="us-east-1", clock=lambda: 1700
    )

    assert outcome.created is True
    assert outcome.record.timestamp == 1700
    assert outcome.record.region == "us-east-1"
    assert outcome.record.amount == Decimal("42.00")
    assert repository.writes == 1
    assert notifications.published == [outcome.record]


def test_repeat_returns_the_stored_record_and_neither_writes_nor_publishes() -> None:
    repository, notifications = InMemoryPaymentRepository(), RecordingNotifications()
    first = process_payment(payment(), repository=repository, notifications=notifications, region="r", clock=lambda: 1)

    again = process_payment(payment(), repository=repository, notifications=notifications, region="r", clock=lambda: 2)

    assert again.created is False
    assert again.record == first.record
    assert repository.writes == 1
    assert len(notifications.published) == 1


@pytest.mark.parametrize("changed", [payment(amount="43.00"), payment(customer="cust-2")])
def test_reusing_a_transaction_id_for_a_different_payment_is_a_conflict(changed: PaymentRequest) -> None:
    repository, notifications = InMemoryPaymentRepository(), RecordingNotifications()
    process_payment(payment(), repository=repository, notifications=notifications, region="r", clock=lambda: 1)

    with pytest.raises(TransactionConflict):
        process_payment(changed, repository=repository, notifications=notifications, region="r", clock=lambda: 2)

    assert repository.writes == 1
    assert len(notifications.published) == 1
