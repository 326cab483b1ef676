"""Page cursors of a customer's history: opaque to clients, checked before DynamoDB sees them."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from chalicelib.errors import FieldError, InvalidQuery
from chalicelib.items import scoped, unscoped
from chalicelib.payments import is_identifier
from chalicelib.schema import PaymentsTableSchema as Schema

# A cursor encodes three short keys; anything much longer was not made by this API.
MAX_CURSOR_LENGTH = 512
_CURSOR_TIMESTAMP = re.compile(r"[1-9][0-9]{0,18}")
_CURSOR_KEYS = {
    Schema.PARTITION_KEY: "S",
    Schema.SORT_KEY: "N",
    Schema.CUSTOMER_INDEX_PARTITION_KEY: "S",
}


def encode_cursor(last_evaluated_key: dict[str, Any]) -> str:
    """An opaque page cursor from DynamoDB's ``LastEvaluatedKey``."""
    raw = json.dumps(last_evaluated_key, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, client: str, customer_id: str) -> dict[str, Any]:
    """The ``ExclusiveStartKey`` in ``cursor``; refuses cursors not made for ``client``'s ``customer_id``.

    A cursor names the client it was made for: another client's cursor is refused like a forged
    one (400), so no client pages through the index from a key of someone else's.
    """
    invalid = InvalidQuery([FieldError("cursor", "is not a cursor returned for this customer")])
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise invalid
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, RecursionError) as error:
        raise invalid from error
    if not isinstance(key, dict) or set(key) != set(_CURSOR_KEYS):
        raise invalid
    for name, kind in _CURSOR_KEYS.items():
        value = key[name]
        if not isinstance(value, dict) or set(value) != {kind} or not isinstance(value[kind], str):
            raise invalid
    # Only values DynamoDB takes as a start key: anything else would fail the query itself,
    # and a client's cursor must never produce a 503.
    if key[Schema.CUSTOMER_INDEX_PARTITION_KEY]["S"] != scoped(client, customer_id):
        raise invalid
    owner, transaction_id = unscoped(key[Schema.PARTITION_KEY]["S"])
    if (
        not _CURSOR_TIMESTAMP.fullmatch(key[Schema.SORT_KEY]["N"])
        or owner != client
        or not is_identifier(transaction_id)
    ):
        raise invalid
    return key
