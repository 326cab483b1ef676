"""Processing a validated payment exactly once: pure Python over injected ports."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

from chalicelib.errors import TransactionConflict
from chalicelib.payments import PaymentRecord, PaymentRequest

Clock = Callable[[], int]


def epoch_millis() -> int:
    """The current time as integer epoch milliseconds, the table's timestamp unit."""
    return time.time_ns() // 1_000_000


class CustomerPage(NamedTuple):
    """One page of a customer's payments, newest first, and the cursor of the next page."""

    payments: list[PaymentRecord]
    next_cursor: str | None


class PaymentRepository(Protocol):
    """Where processed payments are kept."""

    def insert_new(self, record: PaymentRecord) -> PaymentRecord | None:
        """Store ``record`` unless its transaction id is taken; return the stored one if it is.

        Implementations must make the check and the write one atomic, conditional operation.
        """

    def get(self, transaction_id: str) -> PaymentRecord | None:
        """The payment stored under ``transaction_id``, if any."""

    def list_for_customer(self, customer_id: str, *, limit: int, cursor: str | None) -> CustomerPage:
        """A page of ``customer_id``'s payments, newest first."""


class PaymentQueue(Protocol):
    """The queue that carries accepted payments to the processor."""

    def enqueue(self, payment: PaymentRequest, *, correlation_id: str | None) -> None:
        """Send ``payment`` for asynchronous processing."""


class Notifications(Protocol):
    """The transactions topic that downstream systems subscribe to."""

    def payments_processed(self, records: Sequence[PaymentRecord]) -> set[int]:
        """Announce newly processed payments; returns the indices of those not published."""


class ProcessingOutcome(NamedTuple):
    """The stored payment and whether this call created it (False: it was a repeat)."""

    record: PaymentRecord
    created: bool


def process_payment(
    payment: PaymentRequest,
    *,
    repository: PaymentRepository,
    region: str,
    clock: Clock = epoch_millis,
) -> ProcessingOutcome:
    """Record ``payment`` once, however often it is submitted.

    A repeat of a stored payment returns the stored record without writing anything; a
    different payment under a used transaction id raises :class:`TransactionConflict`. The
    notification is not sent from here: the notifier publishes it from the table's stream
    (:mod:`chalicelib.outbox`), so it can neither be lost nor doubled by a retry.
    """
    record = PaymentRecord.from_request(payment, timestamp=clock(), region=region)
    existing = repository.insert_new(record)
    if existing is None:
        return ProcessingOutcome(record=record, created=True)
    if not existing.is_same_payment(payment):
        raise TransactionConflict(payment.transaction_id)
    return ProcessingOutcome(record=existing, created=False)


def processed_message(record: PaymentRecord) -> dict[str, Any]:
    """The notification body published for a processed payment."""
    return {"event": "payment.processed", "payment": record.to_json()}
