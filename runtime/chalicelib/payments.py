"""The payment model (requests, records, rejections) and its validation: pure Python, no AWS.

Money is ``Decimal`` from the request text to the table and back: JSON numbers are parsed as
``Decimal`` by :func:`chalicelib.http.parse_json` and amount strings are converted directly, so
no amount ever passes through ``float``.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, NamedTuple

from chalicelib.cards import find_pan_fields, redact_pans
from chalicelib.currencies import minor_units
from chalicelib.errors import FieldError, ValidationFailed

FRAUD_REVIEW_THRESHOLD = Decimal(10000)
# An upper bound keeps amounts inside DynamoDB's 38-digit numbers and out of absurd territory.
MAX_AMOUNT = Decimal(1000000000)
MAX_ID_LENGTH = 64
MAX_DESCRIPTION_LENGTH = 255
MAX_METADATA_KEYS = 20
MAX_METADATA_KEY_LENGTH = 40
MAX_METADATA_VALUE_LENGTH = 500
MAX_AMOUNT_TEXT_LENGTH = 32

STATUS_PROCESSED = "PROCESSED"
STATUS_REJECTED = "REJECTED"

_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]*")
_AMOUNT_TEXT = re.compile(r"(0|[1-9][0-9]*)(\.[0-9]+)?")
_CURRENCY_PATTERN = re.compile(r"[A-Za-z]{3}")
# What an SQS message may not carry: control characters other than tab, newline and carriage
# return, unpaired surrogates, U+FFFE and U+FFFF. A description or metadata entry with one would
# pass /validate and then fail SendMessage (a 503 the client would retry forever): refused here.
# A loop, not a regex: compiling a character class this wide costs ~4 ms of every cold start.
_CONTROL_CHARACTERS = frozenset(map(chr, range(0x20))) - {"\t", "\n", "\r"}
UNSENDABLE_MESSAGE = "must not contain control characters or unpaired surrogates"


def _unsendable(text: str) -> bool:
    return any(ch in _CONTROL_CHARACTERS or "\ud800" <= ch <= "\udfff" or ch in "\ufffe\uffff" for ch in text)


REQUIRED_FIELDS = ("transaction_id", "customer_id", "amount", "currency")
OPTIONAL_FIELDS = ("description", "metadata")


class PaymentRequest(NamedTuple):
    """A payment that passed validation; ``amount`` is quantized to the currency's minor units."""

    transaction_id: str
    customer_id: str
    amount: Decimal
    currency: str
    description: str | None = None
    metadata: Mapping[str, str] = MappingProxyType({})

    @property
    def fraud_review(self) -> bool:
        """Whether the payment must be reviewed for fraud before money moves."""
        return requires_fraud_review(self.amount)

    def to_message(self) -> dict[str, Any]:
        """The JSON document that carries this payment through the queue."""
        message: dict[str, Any] = {
            "transaction_id": self.transaction_id,
            "customer_id": self.customer_id,
            "amount": str(self.amount),
            "currency": self.currency,
        }
        if self.description is not None:
            message["description"] = self.description
        if self.metadata:
            message["metadata"] = dict(self.metadata)
        return message

    def verdict(self) -> dict[str, Any]:
        """What ``POST /validate`` answers for an accepted payment."""
        return {
            "status": "accepted",
            "transaction_id": self.transaction_id,
            "customer_id": self.customer_id,
            "amount": str(self.amount),
            "currency": self.currency,
            "fraud_review": self.fraud_review,
        }


class PaymentRecord(NamedTuple):
    """A processed payment as stored in the payments table and returned by the API.

    ``client`` owns it: the API client whose key sent it. Its transaction and customer ids are
    that client's own; another client's ``order-1`` is another payment.
    """

    transaction_id: str
    timestamp: int
    customer_id: str
    amount: Decimal
    currency: str
    status: str
    fraud_review: bool
    region: str
    client: str

    @classmethod
    def from_request(
        cls, payment: PaymentRequest, *, client: str, timestamp: int, region: str
    ) -> PaymentRecord:
        """The record of ``client``'s ``payment`` processed at ``timestamp`` (epoch ms) in ``region``."""
        return cls(
            transaction_id=payment.transaction_id,
            timestamp=timestamp,
            customer_id=payment.customer_id,
            amount=payment.amount,
            currency=payment.currency,
            status=STATUS_PROCESSED,
            fraud_review=payment.fraud_review,
            region=region,
            client=client,
        )

    def is_same_payment(self, payment: PaymentRequest) -> bool:
        """True when ``payment`` is a repeat of this one, not a reuse of its transaction id."""
        return (
            self.customer_id == payment.customer_id
            and self.amount == payment.amount
            and self.currency == payment.currency
        )

    def to_json(self) -> dict[str, Any]:
        """The record as the API returns it to its client; the amount is a string so no client reads a float."""
        return {
            "transaction_id": self.transaction_id,
            "timestamp": self.timestamp,
            "customer_id": self.customer_id,
            "amount": str(self.amount),
            "currency": self.currency,
            "status": self.status,
            "fraud_review": self.fraud_review,
            "region": self.region,
        }


def requires_fraud_review(amount: Decimal) -> bool:
    """The fraud rule: amounts over 10,000 units of their currency go to manual review."""
    return amount > FRAUD_REVIEW_THRESHOLD


def validate_payment(document: Any) -> PaymentRequest:
    """Check a request body and return the payment it describes.

    Raises :class:`ValidationFailed` listing every problem at once. A card number anywhere in
    the body is reported by its location only; its digits are never copied into the error.
    """
    if not isinstance(document, dict):
        raise ValidationFailed([FieldError("(body)", "must be a JSON object")])

    errors = [
        FieldError(path, "looks like a card number; card numbers must never be sent here")
        for path in find_pan_fields(document)
    ]
    for name in document:
        if name not in REQUIRED_FIELDS and name not in OPTIONAL_FIELDS:
            shown = redact_pans(str(name))[:MAX_ID_LENGTH] or "(empty field name)"
            errors.append(FieldError(shown, "is not a recognised field"))
    for name in REQUIRED_FIELDS:
        if document.get(name) is None:
            errors.append(FieldError(name, "is required"))

    transaction_id = _identifier(document, "transaction_id", errors)
    customer_id = _identifier(document, "customer_id", errors)
    currency = _currency(document.get("currency"), errors)
    amount = _amount(document.get("amount"), currency, errors)
    description = _description(document.get("description"), errors)
    metadata = _metadata(document.get("metadata"), errors)

    if errors:
        raise ValidationFailed(_unique(errors))
    assert transaction_id and customer_id and currency and amount is not None
    return PaymentRequest(
        transaction_id=transaction_id,
        customer_id=customer_id,
        amount=amount,
        currency=currency,
        description=description,
        metadata=metadata,
    )


def is_identifier(value: str) -> bool:
    """Whether ``value`` is a well-formed transaction or customer id."""
    return 1 <= len(value) <= MAX_ID_LENGTH and _ID_PATTERN.fullmatch(value) is not None


def _unique(errors: list[FieldError]) -> list[FieldError]:
    return list(dict.fromkeys(errors))


def _identifier(document: Mapping[str, Any], name: str, errors: list[FieldError]) -> str | None:
    value = document.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        errors.append(FieldError(name, "must be a string"))
        return None
    if not is_identifier(value):
        errors.append(
            FieldError(
                name,
                f"must be 1-{MAX_ID_LENGTH} characters of letters, digits and _ . : -, "
                "starting with a letter or digit",
            )
        )
        return None
    return value


def _currency(value: Any, errors: list[FieldError]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _CURRENCY_PATTERN.fullmatch(value):
        errors.append(FieldError("currency", "must be a three-letter ISO 4217 code"))
        return None
    code = value.upper()
    if minor_units(code) is None:
        errors.append(FieldError("currency", "is not a supported ISO 4217 currency"))
        return None
    return code


def _amount(value: Any, currency: str | None, errors: list[FieldError]) -> Decimal | None:
    if value is None:
        return None
    amount = _parse_amount(value)
    if amount is None:
        errors.append(FieldError("amount", 'must be a positive decimal number, as a string like "12.50"'))
        return None
    if amount <= 0:
        errors.append(FieldError("amount", "must be greater than zero"))
        return None
    if amount >= MAX_AMOUNT:
        errors.append(FieldError("amount", f"must be less than {MAX_AMOUNT}"))
        return None
    if currency is None:
        return None
    digits = minor_units(currency)
    assert digits is not None
    places = _decimal_places(amount)
    if places > digits:
        errors.append(FieldError("amount", f"{currency} allows at most {digits} decimal places"))
        return None
    return in_minor_units(amount, currency)


def in_minor_units(amount: Decimal, currency: str) -> Decimal:
    """``amount`` written with exactly ``currency``'s minor digits: ``12.5`` USD is ``12.50``.

    DynamoDB trims leading and trailing zeros of every number it stores, so a stored amount
    comes back as ``12.5``; giving it its currency's exponent again makes one payment read the
    same in every answer and event. Unknown currencies keep the amount as it is.
    """
    digits = minor_units(currency)
    return amount if digits is None else amount.quantize(Decimal(1).scaleb(-digits))


def _decimal_places(amount: Decimal) -> int:
    """Significant digits after the point: trailing zeros carry no value ("10.500" is 2)."""
    _, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -(exponent + trailing_zeros))


def _parse_amount(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        if len(value) > MAX_AMOUNT_TEXT_LENGTH or not _AMOUNT_TEXT.fullmatch(value):
            return None
        return Decimal(value)
    if isinstance(value, Decimal):
        # JSON numbers arrive as Decimal; exponent notation is legal JSON, NaN and Infinity
        # are not money.
        return value if value.is_finite() else None
    if isinstance(value, int):
        try:
            return Decimal(value)
        except InvalidOperation:
            return None
    return None


def _description(value: Any, errors: list[FieldError]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_DESCRIPTION_LENGTH:
        errors.append(
            FieldError("description", f"must be a string of at most {MAX_DESCRIPTION_LENGTH} characters")
        )
        return None
    if _unsendable(value):
        errors.append(FieldError("description", UNSENDABLE_MESSAGE))
        return None
    return value


def _metadata(value: Any, errors: list[FieldError]) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > MAX_METADATA_KEYS:
        errors.append(
            FieldError("metadata", f"must be an object of at most {MAX_METADATA_KEYS} string values")
        )
        return {}
    for key, item in value.items():
        if _unsendable(key):
            errors.append(FieldError("metadata", f"keys {UNSENDABLE_MESSAGE}"))
        elif (
            len(key) > MAX_METADATA_KEY_LENGTH
            or not isinstance(item, str)
            or len(item) > MAX_METADATA_VALUE_LENGTH
        ):
            errors.append(
                FieldError(
                    f"metadata.{redact_pans(key)[:MAX_METADATA_KEY_LENGTH]}",
                    f"keys must be at most {MAX_METADATA_KEY_LENGTH} characters and values "
                    f"strings of at most {MAX_METADATA_VALUE_LENGTH}",
                )
            )
        elif _unsendable(item):
            errors.append(FieldError(f"metadata.{redact_pans(key)}", UNSENDABLE_MESSAGE))
    return dict(value)


class Rejection(NamedTuple):
    """A queued payment that can never be processed: recorded, announced, and not retried.

    A business outcome, not a failure: a transaction id reused for another payment, or a message
    that is not a valid payment. ``transaction_id`` is ``None`` when the message names no usable
    one; the rejected payment's details are kept only when it was valid (a conflicting reuse).
    Nothing here ever holds the message body, which may carry card data.
    """

    transaction_id: str | None
    message_id: str
    sent_at: int
    rejected_at: int
    region: str
    errors: tuple[FieldError, ...]
    customer_id: str | None = None
    amount: Decimal | None = None
    currency: str | None = None
    # The client whose message it was; None for a message that names none (no client sent it).
    client: str | None = None

    @property
    def sort_key(self) -> int:
        """Where the rejection sits under its transaction id: a sort key below 0 (:mod:`chalicelib.schema`).

        One per message, rising with the time the message was sent, so a query downwards from the
        claim meets the newest first; derived from the message alone, so a redelivered message
        finds the rejection it already recorded.
        """
        slot = zlib.crc32(self.message_id.encode()) % REJECTION_SLOTS_PER_MS
        return self.sent_at * REJECTION_SLOTS_PER_MS + slot - REJECTION_KEY_FLOOR

    def to_json(self) -> dict[str, Any]:
        """The rejection as the API returns and the ``payment.rejected`` event carries it."""
        body: dict[str, Any] = {
            "transaction_id": self.transaction_id,
            "status": STATUS_REJECTED,
            "rejected_at": self.rejected_at,
            "region": self.region,
            "errors": [error.to_json() for error in self.errors],
        }
        for name in ("customer_id", "currency"):
            if getattr(self, name) is not None:
                body[name] = getattr(self, name)
        if self.amount is not None:
            body["amount"] = str(self.amount)
        return body


# Rejections of one transaction id sent in the same millisecond get distinct keys from their
# message ids; a clash left over is resolved by the repository (see record_rejection).
REJECTION_SLOTS_PER_MS = 1000
# Far below any sent time in slots (epoch ms x 1000 is about 1.8e15 today); DynamoDB numbers
# hold 38 digits.
REJECTION_KEY_FLOOR = 10**20
Announced = PaymentRecord | Rejection


def stored_at(item: Announced) -> int:
    """When ``item`` was stored (epoch ms): a payment's processing time, a rejection's."""
    return item.timestamp if isinstance(item, PaymentRecord) else item.rejected_at
