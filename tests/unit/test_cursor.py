"""Page cursors: whatever a client sends as ``cursor``, the query DynamoDB gets is well formed.

A cursor DynamoDB would refuse (a NaN sort key, an empty key) would fail the query and answer
503: the client could make the service look down. Refused here as a 400 instead.
"""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.cursor import decode_cursor, encode_cursor
from chalicelib.errors import InvalidQuery

CLIENT = "merchant-a"
CUSTOMER = "cust-1"
GOOD_KEY = {
    "transaction_id": {"S": f"{CLIENT}#txn-9"},
    "timestamp": {"N": "1700000000000"},
    "customer_id": {"S": f"{CLIENT}#{CUSTOMER}"},
}


def cursor_of(document: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")


def test_a_cursor_the_api_made_decodes_to_its_key() -> None:
    assert decode_cursor(encode_cursor(GOOD_KEY), CLIENT, CUSTOMER) == GOOD_KEY


@pytest.mark.parametrize(
    "key",
    [
        {**GOOD_KEY, "timestamp": {"N": "NaN"}},
        {**GOOD_KEY, "timestamp": {"N": "1e999999"}},
        {**GOOD_KEY, "timestamp": {"N": "-5"}},
        {**GOOD_KEY, "transaction_id": {"S": ""}},
        {**GOOD_KEY, "transaction_id": {"S": f"{CLIENT}#"}},
        {**GOOD_KEY, "customer_id": {"S": f"{CLIENT}#someone-else"}},
        {**GOOD_KEY, "customer_id": {"S": CUSTOMER}},
        # Another client's cursor for a customer id both clients use.
        {**GOOD_KEY, "customer_id": {"S": f"merchant-b#{CUSTOMER}"}},
        {**GOOD_KEY, "transaction_id": {"S": "merchant-b#txn-9"}},
    ],
)
def test_a_key_dynamodb_would_refuse_or_another_customers_or_clients_key_is_a_400(key: dict) -> None:
    with pytest.raises(InvalidQuery):
        decode_cursor(cursor_of(key), CLIENT, CUSTOMER)


def test_a_deeply_nested_cursor_is_a_400() -> None:
    with pytest.raises(InvalidQuery):
        decode_cursor(cursor_of(json.loads("[" * 50 + "]" * 50))[:512], CLIENT, CUSTOMER)
    with pytest.raises(InvalidQuery):
        decode_cursor(base64.urlsafe_b64encode(b"[" * 100_000).decode(), CLIENT, CUSTOMER)


@given(
    st.text(max_size=600)
    | st.recursive(
        st.text(max_size=8) | st.integers(), lambda c: st.dictionaries(st.text(max_size=15), c, max_size=4)
    ).map(cursor_of)
)
def test_any_cursor_text_is_refused_as_a_400_or_gives_a_well_formed_key(text: str) -> None:
    try:
        key = decode_cursor(text, CLIENT, CUSTOMER)
    except InvalidQuery:
        return
    assert key["customer_id"] == {"S": f"{CLIENT}#{CUSTOMER}"}
    assert key["timestamp"]["N"].isdigit() and key["transaction_id"]["S"].startswith(f"{CLIENT}#")
