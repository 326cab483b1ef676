"""The payments-table wire format round-trips a payment exactly, amounts included."""

from __future__ import annotations

from decimal import Decimal

from chalicelib.items import claim_attributes, is_payment_record_of, record_attributes, record_from_attributes
from chalicelib.payments import PaymentRecord

RECORD = PaymentRecord("txn-1", 1700000000123, "cust-1", Decimal("1000000.005"), "BHD", "PROCESSED", True, "us-east-2")


def test_a_record_and_its_claim_both_give_back_the_payment() -> None:
    assert record_from_attributes(record_attributes(RECORD)) == RECORD
    assert record_from_attributes(claim_attributes(RECORD)) == RECORD


def test_amounts_are_written_as_their_exact_decimal_string() -> None:
    assert record_attributes(RECORD)["amount"] == {"N": "1000000.005"}


def test_the_claim_sits_at_sort_key_zero_and_stays_out_of_the_customer_index() -> None:
    claim = claim_attributes(RECORD)

    assert claim["timestamp"] == {"N": "0"}
    assert "customer_id" not in claim
    assert not is_payment_record_of("us-east-2", claim)
    assert is_payment_record_of("us-east-2", record_attributes(RECORD))
    assert not is_payment_record_of("us-east-1", record_attributes(RECORD))


def test_an_amount_trimmed_by_dynamodb_reads_back_with_its_currency_digits() -> None:
    # GIVEN a USD record as DynamoDB returns it: numbers lose their trailing zeros when stored
    stored = record_attributes(RECORD._replace(amount=Decimal("12.50"), currency="USD"))
    stored["amount"] = {"N": "12.5"}
    whole = record_attributes(RECORD._replace(amount=Decimal("100.00"), currency="EUR"))
    whole["amount"] = {"N": "100"}

    # WHEN it is read back, THEN it shows the currency's minor digits again
    assert str(record_from_attributes(stored).amount) == "12.50"
    assert str(record_from_attributes(whole).amount) == "100.00"
    assert str(record_from_attributes(claim_attributes(record_from_attributes(stored))).amount) == "12.50"
