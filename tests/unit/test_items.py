"""The payments-table wire format round-trips a payment exactly, amounts included."""

from __future__ import annotations

from decimal import Decimal

from chalicelib.errors import FieldError
from chalicelib.items import (
    announced_from_attributes,
    announced_items_filter,
    claim_attributes,
    matches_filter,
    record_attributes,
    record_from_attributes,
    record_key,
    rejection_attributes,
    rejection_from_attributes,
)
from chalicelib.payments import PaymentRecord, Rejection

RECORD = PaymentRecord(
    "txn-1",
    1700000000123,
    "cust-1",
    Decimal("1000000.005"),
    "BHD",
    "PROCESSED",
    True,
    "us-east-2",
    "merchant-a",
)
CONFLICT = Rejection(
    transaction_id="txn-1",
    message_id="m-1",
    sent_at=1700000000000,
    rejected_at=1700000000456,
    region="us-east-2",
    errors=(FieldError("transaction_id", "already used"),),
    customer_id="cust-2",
    amount=Decimal("5.00"),
    currency="USD",
    client="merchant-a",
)
UNREADABLE = Rejection(
    None, "m-2", 1700000000000, 1700000000457, "us-east-2", (FieldError("(body)", "is not valid JSON"),)
)


def inserted(item: dict) -> dict:
    return {"eventName": "INSERT", "dynamodb": {"NewImage": item}}


def test_a_record_and_its_claim_both_give_back_the_payment() -> None:
    assert record_from_attributes(record_attributes(RECORD)) == RECORD
    assert record_from_attributes(claim_attributes(RECORD)) == RECORD


def test_amounts_are_written_as_their_exact_decimal_string() -> None:
    assert record_attributes(RECORD)["amount"] == {"N": "1000000.005"}


def test_the_claim_sits_at_sort_key_zero_and_stays_out_of_the_customer_index() -> None:
    claim = claim_attributes(RECORD)

    assert claim["timestamp"] == {"N": "0"}
    assert "customer_id" not in claim
    assert record_key(claim) == {
        "transaction_id": {"S": "merchant-a#txn-1"},
        "timestamp": {"N": "1700000000123"},
    }


def test_the_record_beside_a_claim_is_never_announced() -> None:
    """The claim announces the payment; a record written later by a repair must not announce it again."""
    assert not matches_filter(announced_items_filter("us-east-2"), inserted(record_attributes(RECORD)))


def test_only_the_claims_and_rejections_a_region_stored_are_announced_by_it() -> None:
    for item in (claim_attributes(RECORD), rejection_attributes(CONFLICT, CONFLICT.sort_key)):
        assert matches_filter(announced_items_filter("us-east-2"), inserted(item))
        assert not matches_filter(announced_items_filter("us-east-1"), inserted(item))
        assert not matches_filter(
            announced_items_filter("us-east-2"), {"eventName": "MODIFY", "dynamodb": {"NewImage": item}}
        )


def test_a_rejection_round_trips_and_stays_out_of_the_customer_index() -> None:
    for rejection in (CONFLICT, UNREADABLE):
        item = rejection_attributes(rejection, rejection.sort_key)

        assert rejection_from_attributes(item) == announced_from_attributes(item) == rejection
        assert "customer_id" not in item
        assert int(item["timestamp"]["N"]) < 0
    assert rejection_attributes(UNREADABLE, -1)["transaction_id"]["S"].startswith("__")


def test_a_redelivered_message_maps_to_the_same_rejection_key_and_another_message_does_not() -> None:
    again = CONFLICT._replace(rejected_at=CONFLICT.rejected_at + 30_000)

    assert again.sort_key == CONFLICT.sort_key
    assert CONFLICT._replace(message_id="m-3").sort_key != CONFLICT.sort_key


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


def test_a_later_rejection_sorts_nearer_the_claim_so_a_lookup_meets_the_newest_first() -> None:
    later = CONFLICT._replace(message_id="m-9", sent_at=CONFLICT.sent_at + 1)

    assert CONFLICT.sort_key < later.sort_key < 0


def test_two_clients_ids_are_two_keys_in_the_table_and_in_the_customer_index() -> None:
    theirs = RECORD._replace(client="merchant-b")

    mine_item, their_item = record_attributes(RECORD), record_attributes(theirs)

    assert mine_item["transaction_id"] != their_item["transaction_id"]
    assert mine_item["customer_id"] != their_item["customer_id"]
    assert claim_attributes(RECORD)["transaction_id"] != claim_attributes(theirs)["transaction_id"]
    assert record_from_attributes(their_item) == theirs
    assert record_from_attributes(their_item).to_json() == RECORD.to_json()


def test_a_rejection_sits_under_its_clients_transaction_id_and_names_the_client() -> None:
    item = rejection_attributes(CONFLICT, -1)

    assert item["transaction_id"] == claim_attributes(RECORD)["transaction_id"]
    assert rejection_from_attributes(item) == CONFLICT
    assert (
        rejection_attributes(CONFLICT._replace(client="merchant-b"), -1)["transaction_id"]
        != item["transaction_id"]
    )


def test_a_synthetic_clients_claim_is_not_announced_and_a_merchants_is() -> None:
    canary = RECORD._replace(client="canary")
    pattern = announced_items_filter(RECORD.region)

    assert matches_filter(pattern, inserted(claim_attributes(RECORD)))
    assert not matches_filter(pattern, inserted(claim_attributes(canary)))
    assert record_from_attributes(claim_attributes(canary)) == canary
