"""Processing is idempotent on transaction_id: one record however often a payment arrives."""

from __future__ import annotations

from decimal import Decimal

import pytest

from chalicelib.errors import TransactionConflict
from chalicelib.payments import PaymentRequest
from chalicelib.processing import process_payment
from tests.fakes import InMemoryPaymentRepository


def payment(amount: str = "42.00", customer: str = "cust-1") -> PaymentRequest:
    return PaymentRequest(
        transaction_id="txn-1", customer_id=customer, amount=Decimal(amount), currency="USD"
    )


def test_first_submission_writes_one_record() -> None:
    repository = InMemoryPaymentRepository()

    outcome = process_payment(
        payment(), client="merchant-a", repository=repository, region="us-east-1", clock=lambda: 1700
    )

    assert outcome.created is True
    assert outcome.record.timestamp == 1700
    assert outcome.record.region == "us-east-1"
    assert outcome.record.amount == Decimal("42.00")
    assert repository.writes == 1


def test_repeat_returns_the_stored_record_and_writes_nothing() -> None:
    repository = InMemoryPaymentRepository()
    first = process_payment(
        payment(), client="merchant-a", repository=repository, region="r", clock=lambda: 1
    )

    again = process_payment(
        payment(), client="merchant-a", repository=repository, region="r", clock=lambda: 2
    )

    assert again.created is False
    assert again.record == first.record
    assert repository.writes == 1


@pytest.mark.parametrize("changed", [payment(amount="43.00"), payment(customer="cust-2")])
def test_reusing_a_transaction_id_for_a_different_payment_is_a_conflict(changed: PaymentRequest) -> None:
    repository = InMemoryPaymentRepository()
    process_payment(payment(), client="merchant-a", repository=repository, region="r", clock=lambda: 1)

    with pytest.raises(TransactionConflict):
        process_payment(changed, client="merchant-a", repository=repository, region="r", clock=lambda: 2)

    assert repository.writes == 1
