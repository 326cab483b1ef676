"""Validation of payment requests: a table of good and bad bodies."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from chalicelib.errors import ValidationFailed
from chalicelib.http import parse_json
from chalicelib.payments import FRAUD_REVIEW_THRESHOLD, requires_fraud_review, validate_payment

VISA_TEST_PAN = "4111111111111111"


def body(**overrides: Any) -> dict[str, Any]:
    payment: dict[str, Any] = {
        "transaction_id": "txn-1",
        "customer_id": "cust-1",
        "amount": "12.50",
        "currency": "USD",
    }
    payment.update(overrides)
    return {k: v for k, v in payment.items() if v is not ...}


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("12.50", "USD", Decimal("12.50")),
        ("12.5", "USD", Decimal("12.50")),
        ("12.500", "USD", Decimal("12.50")),
        ("100", "JPY", Decimal(100)),
        ("100.0", "JPY", Decimal(100)),
        ("1.234", "BHD", Decimal("1.234")),
        ("0.01", "EUR", Decimal("0.01")),
        (Decimal("19.99"), "GBP", Decimal("19.99")),
        (Decimal("1E+3"), "USD", Decimal("1000.00")),
        (Decimal(25), "KWD", Decimal("25.000")),
        ("10", "usd", Decimal("10.00")),
    ],
)
def test_valid_amounts_become_exact_decimals_in_minor_units(
    amount: Any, currency: str, expected: Decimal
) -> None:
    payment = validate_payment(body(amount=amount, currency=currency))

    assert isinstance(payment.amount, Decimal)
    assert payment.amount == expected
    assert str(payment.amount) == str(expected)
    assert payment.currency == currency.upper()


@pytest.mark.parametrize(
    ("document", "field", "fragment"),
    [
        (body(transaction_id=...), "transaction_id", "required"),
        (body(customer_id=...), "customer_id", "required"),
        (body(amount=...), "amount", "required"),
        (body(currency=...), "currency", "required"),
        (body(transaction_id=12), "transaction_id", "string"),
        (body(transaction_id=""), "transaction_id", "characters"),
        (body(transaction_id="x" * 65), "transaction_id", "characters"),
        (body(customer_id="has space"), "customer_id", "characters"),
        (body(amount="-1.00"), "amount", "positive decimal"),
        (body(amount="0"), "amount", "greater than zero"),
        (body(amount="0.00"), "amount", "greater than zero"),
        (body(amount=Decimal("-0")), "amount", "greater than zero"),
        (body(amount=Decimal("-0.0")), "amount", "greater than zero"),
        (body(amount="1e3"), "amount", "positive decimal"),
        (body(amount="NaN"), "amount", "positive decimal"),
        (body(amount="Infinity"), "amount", "positive decimal"),
        (body(amount=" 1.00"), "amount", "positive decimal"),
        (body(amount="1,000.00"), "amount", "positive decimal"),
        (body(amount=True), "amount", "positive decimal"),
        (body(amount=[1]), "amount", "positive decimal"),
        (body(amount=Decimal("1E+400")), "amount", "less than"),
        (body(amount="1000000000"), "amount", "less than"),
        (body(amount="1.001"), "amount", "at most 2 decimal places"),
        (body(amount="1.5", currency="JPY"), "amount", "at most 0 decimal places"),
        (body(amount="1.0001", currency="BHD"), "amount", "at most 3 decimal places"),
        (body(amount=Decimal("1E-400")), "amount", "decimal places"),
        (body(currency="XYZ"), "currency", "not a supported"),
        (body(currency="US"), "currency", "three-letter"),
        (body(currency=840), "currency", "three-letter"),
        (body(description=5), "description", "string"),
        (body(description="x" * 256), "description", "at most 255"),
        (body(metadata="x"), "metadata", "object"),
        (body(metadata={"k": 1}), "metadata.k", "values"),
        (body(description="bad \udc45 half"), "description", "unpaired surrogates"),
        (body(description="bell \u0007"), "description", "control characters"),
        (body(description="\ufffe"), "description", "control characters"),
        (body(metadata={"k\u0000": "v"}), "metadata", "keys must not contain"),
        (body(metadata={"k": "\udbfb"}), "metadata.k", "unpaired surrogates"),
        (body(surprise="x"), "surprise", "not a recognised field"),
        ([], "(body)", "JSON object"),
        ("text", "(body)", "JSON object"),
    ],
)
def test_invalid_payments_name_the_field_and_the_problem(document: Any, field: str, fragment: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_payment(document)

    messages = {e.field: e.message for e in caught.value.errors}
    assert field in messages, caught.value.errors
    assert fragment in messages[field]


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_payment({"amount": "-5", "currency": "ZZZ", "extra": 1})

    fields = {e.field for e in caught.value.errors}
    assert fields == {"transaction_id", "customer_id", "amount", "currency", "extra"}


@pytest.mark.parametrize(
    "document",
    [
        body(description=f"card {VISA_TEST_PAN}"),
        body(metadata={"note": "4111 1111 1111 1111"}),
        body(metadata={"note": "4111-1111-1111-1111"}),
        body(card_number=VISA_TEST_PAN),
        body(card_number=Decimal(VISA_TEST_PAN)),
        body(transaction_id=VISA_TEST_PAN),
    ],
)
def test_a_card_number_anywhere_is_rejected_and_never_echoed(document: dict[str, Any]) -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_payment(document)

    assert any("card number" in e.message for e in caught.value.errors)
    rendered = repr([e.to_json() for e in caught.value.errors]) + str(caught.value)
    assert "1111" not in rendered


def test_a_card_number_used_as_a_key_is_not_echoed_in_the_field_path() -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_payment(body(metadata={VISA_TEST_PAN: "x"}))

    assert VISA_TEST_PAN not in str([e.to_json() for e in caught.value.errors])


def test_long_digit_strings_that_fail_luhn_are_not_mistaken_for_cards() -> None:
    payment = validate_payment(body(description="order 4111111111111112"))

    assert payment.description == "order 4111111111111112"


@pytest.mark.parametrize(
    ("amount", "flagged"),
    [("9999.99", False), ("10000.00", False), ("10000.01", True), ("250000", True)],
)
def test_payments_over_ten_thousand_are_flagged_for_fraud_review(amount: str, flagged: bool) -> None:
    payment = validate_payment(body(amount=amount))

    assert payment.fraud_review is flagged
    assert payment.verdict()["fraud_review"] is flagged


def test_fraud_threshold_is_in_the_payments_own_currency_units() -> None:
    assert requires_fraud_review(FRAUD_REVIEW_THRESHOLD + Decimal(1)) is True
    assert validate_payment(body(amount="9000", currency="JPY")).fraud_review is False
    assert validate_payment(body(amount="10001", currency="JPY")).fraud_review is True


def test_json_numbers_never_pass_through_float() -> None:
    document = parse_json('{"transaction_id":"t","customer_id":"c","amount":0.1,"currency":"USD"}')

    payment = validate_payment(document)

    assert payment.amount == Decimal("0.10")
    assert not isinstance(document["amount"], float)


def test_queue_message_round_trips_to_the_same_payment() -> None:
    payment = validate_payment(body(description="books", metadata={"order": "42"}))

    again = validate_payment(parse_json(__import__("json").dumps(payment.to_message())))

    assert again == payment
