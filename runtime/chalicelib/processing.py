"""Processing a validated payment exactly once, and what a payment that cannot be processed becomes.

Pure Python over the ports of :mod:`chalicelib.ports`; used by the API function (``/process``)
and the processor function (queued payments).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from decimal import Decimal
from typing import Any, NamedTuple

from chalicelib.errors import FieldError, TransactionConflict
from chalicelib.payments import STATUS_REJECTED, PaymentRecord, PaymentRequest
from chalicelib.ports import PaymentRepository

Clock = Callable[[], int]


def epoch_millis() -> int:
    """The current time as integer epoch milliseconds, the table's timestamp unit."""
    return time.time_ns() // 1_000_000


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
        """Where the rejection sits under its transaction id: below the claim (0), one per message.

        Negative, so it never meets a payment record (positive timestamps), and rising with the
        time the message was sent, so a query downwards from the claim meets the newest first;
        derived from the message alone, so a redelivered message finds the rejection it already
        recorded.
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


class ProcessingOutcome(NamedTuple):
    """The stored payment and whether this call created it (False: it was a repeat)."""

    record: PaymentRecord
    created: bool


def process_payment(
    payment: PaymentRequest,
    *,
    client: str,
    repository: PaymentRepository,
    region: str,
    clock: Clock = epoch_millis,
) -> ProcessingOutcome:
    """Record ``client``'s ``payment`` once, however often it is submitted.

    A repeat of a stored payment returns the stored record without writing anything; a
    different payment under a transaction id the client used raises :class:`TransactionConflict`. The
    notification is not sent from here: the notifier publishes it from the table's stream
    (:mod:`chalicelib.outbox`), so it can neither be lost nor doubled by a retry.
    """
    record = PaymentRecord.from_request(payment, client=client, timestamp=clock(), region=region)
    existing = repository.insert_new(record)
    if existing is None:
        return ProcessingOutcome(record=record, created=True)
    if not existing.is_same_payment(payment):
        raise TransactionConflict(payment.transaction_id)
    return ProcessingOutcome(record=existing, created=False)
