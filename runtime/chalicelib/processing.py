"""Processing a validated payment exactly once.

Pure Python over the ports of :mod:`chalicelib.ports`; used by the API function (``/process``)
and the processor function (queued payments).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple

from chalicelib.errors import TransactionConflict
from chalicelib.payments import PaymentRecord, PaymentRequest
from chalicelib.ports import PaymentRepository

Clock = Callable[[], int]


def epoch_millis() -> int:
    """The current time as integer epoch milliseconds, the table's timestamp unit."""
    return time.time_ns() // 1_000_000


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
    on_stored: Callable[[ProcessingOutcome], None] | None = None,
) -> ProcessingOutcome:
    """Record ``client``'s ``payment`` once, however often it is submitted.

    A repeat of a stored payment returns the stored record without writing anything; a
    different payment under a transaction id the client used raises :class:`TransactionConflict`. The
    notification is not sent from here: the notifier publishes it from the table's stream
    (:mod:`chalicelib.outbox`), so it can neither be lost nor doubled by a retry.

    ``on_stored`` is told the outcome once the claim has decided it, while the record is being
    written (never for a conflict): a keyed ``/process`` binds its key there.
    """
    record = PaymentRecord.from_request(payment, client=client, timestamp=clock(), region=region)

    def tell(existing: PaymentRecord | None) -> None:
        assert on_stored is not None
        if existing is None:
            on_stored(ProcessingOutcome(record=record, created=True))
        elif existing.is_same_payment(payment):
            on_stored(ProcessingOutcome(record=existing, created=False))

    existing = repository.insert_new(record, alongside=None if on_stored is None else tell)
    if existing is None:
        return ProcessingOutcome(record=record, created=True)
    if not existing.is_same_payment(payment):
        raise TransactionConflict(payment.transaction_id)
    return ProcessingOutcome(record=existing, created=False)
