"""The ports the payment use cases need from outside the domain, and what they return.

:mod:`chalicelib.aws` implements them on DynamoDB, SQS and SNS; ``tests/fakes.py`` in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from chalicelib.payments import PaymentRecord, PaymentRequest

if TYPE_CHECKING:
    from chalicelib.processing import Announced, Rejection


class CustomerPage(NamedTuple):
    """One page of a customer's payments, newest first, and the cursor of the next page."""

    payments: list[PaymentRecord]
    next_cursor: str | None


class PaymentLookup(NamedTuple):
    """What is known under one transaction id: the processed payment and any rejected reuses."""

    record: PaymentRecord | None
    rejections: list[Rejection]

    def to_json(self) -> dict[str, Any] | None:
        """The processed payment (with the rejected reuses, if any), else the latest rejection."""
        newest_first = sorted(self.rejections, key=lambda r: r.rejected_at, reverse=True)
        if self.record is not None:
            body = self.record.to_json()
            if newest_first:
                body["rejections"] = [rejection.to_json() for rejection in newest_first]
            return body
        return newest_first[0].to_json() if newest_first else None


class PaymentRepository(Protocol):
    """Where processed payments and rejected ones are kept."""

    def insert_new(self, record: PaymentRecord) -> PaymentRecord | None:
        """Store ``record`` unless its client's transaction id is taken; return the stored one if it is.

        Implementations must make the check and the write one atomic, conditional operation.
        """

    def get(self, client: str, transaction_id: str) -> PaymentRecord | None:
        """``client``'s payment stored under ``transaction_id``, if any."""

    def lookup(self, client: str, transaction_id: str) -> PaymentLookup:
        """``client``'s payment and rejections under ``transaction_id`` (one consistent read)."""

    def record_rejection(self, rejection: Rejection) -> bool:
        """Store ``rejection`` once per message; False when this message's was already stored."""

    def list_for_customer(
        self, client: str, customer_id: str, *, limit: int, cursor: str | None
    ) -> CustomerPage:
        """A page of ``client``'s payments of ``customer_id``, newest first."""

    def remove_payments(self, client: str, customer_id: str, *, older_than: int, limit: int) -> int:
        """Delete up to ``limit`` of ``client``'s payments of ``customer_id`` stored before ``older_than``
        (epoch ms), claims and records; returns how many payments. For synthetic clients only."""


class PaymentQueue(Protocol):
    """The queue that carries accepted payments to the processor."""

    def enqueue(self, payment: PaymentRequest, *, client: str, correlation_id: str | None) -> None:
        """Send ``client``'s ``payment`` for asynchronous processing."""


class Notifications(Protocol):
    """The transactions topic that downstream systems subscribe to."""

    def announce(self, items: Sequence[Announced]) -> set[int]:
        """Announce processed and rejected payments; returns the indices of those not published."""


class ClientDirectory(Protocol):
    """Which client each API key of this region belongs to."""

    def client_of(self, api_key_id: str) -> str | None:
        """The client whose key has id ``api_key_id``; None for a key of no client."""
