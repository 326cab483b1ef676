"""Every port the use cases need from outside the domain, and what they return.

:mod:`chalicelib.adapters` implements them on DynamoDB, SQS, SNS, SSM, Secrets Manager and API
Gateway (and the peer API the local environment names); ``tests/fakes.py`` in memory, held to
the same contract (``tests/contract``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from chalicelib.idempotency import KeyBinding
from chalicelib.orphans import Sweep
from chalicelib.payments import Announced, PaymentRecord, PaymentRequest, Rejection
from chalicelib.regions import RegionFlag

if TYPE_CHECKING:
    # Only its name: the webhook rules are not loaded by every function's cold start.
    from chalicelib.webhooks import WebhookEndpoint


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

    def insert_new(
        self,
        record: PaymentRecord,
        *,
        alongside: Callable[[PaymentRecord | None], None] | None = None,
    ) -> PaymentRecord | None:
        """Store ``record`` unless its client's transaction id is taken; return the stored one if it is.

        Implementations must make the check and the write one atomic, conditional operation.
        ``alongside``, given what the claim found (None: this call made the payment), runs once
        the claim is decided, at the same time as the record's write: a keyed payment binds its
        key there without a third sequential write.
        """

    def complete_records(self, records: list[PaymentRecord]) -> None:
        """Write the record of each claim in ``records`` that has none yet (the notifier's repair)."""

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

    def stored_by(
        self, region: str, cursor: dict[str, Any] | None, *, limit: int = 100
    ) -> tuple[list[Announced], dict[str, Any] | None]:
        """One page (read consistently, in table order) of what ``region`` stored and announces,
        from ``cursor``; and where the next page starts (None: the table has been read)."""

    def events_of(
        self, client: str, *, since: int, until: int, cursor: dict[str, Any] | None, limit: int = 100
    ) -> tuple[list[Announced], dict[str, Any] | None]:
        """One page of ``client``'s announced payments and rejections stored in ``[since, until)``
        (epoch ms), each once across the pages, in no promised order; and the next page's cursor
        (plain JSON; None after the last page)."""

    def remove_payments(self, client: str, customer_id: str, *, older_than: int, limit: int) -> int:
        """Delete up to ``limit`` of ``client``'s payments of ``customer_id`` stored before ``older_than``
        (epoch ms), claims and records; returns how many payments. For synthetic clients only."""


class KeyBindings(Protocol):
    """Where the payment routes' ``Idempotency-Key`` bindings are kept (:mod:`chalicelib.idempotency`)."""

    def find(self, binding_id: str) -> KeyBinding | None:
        """The live binding under ``binding_id``, read consistently; None if the key is free."""

    def bind(self, binding: KeyBinding) -> None:
        """Store ``binding`` unless a live binding holds its key already."""


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


class RegionControl(Protocol):
    """Where each region's in-service flag lives."""

    def flag(self, region: str) -> RegionFlag:
        """The flag of ``region``; raises DependencyUnavailable if it cannot be read."""

    def set_flag(self, region: str, flag: RegionFlag) -> None:
        """Store ``flag`` as ``region``'s flag."""


class Probes(Protocol):
    """Cheap reads of this region's dependencies, for /health."""

    def table_answers(self) -> bool: ...

    def queue_answers(self) -> bool: ...

    def in_service(self) -> bool: ...

    def flag(self) -> RegionFlag: ...


class SweepLedger(Protocol):
    """Where this region's observer keeps its sweep of a lost peer's unannounced items."""

    def read(self) -> Sweep: ...

    def save(self, sweep: Sweep) -> None: ...


class OpsNotices(Protocol):
    """Where the orchestrator says what it did."""

    def announce(self, subject: str, details: dict[str, Any]) -> None: ...


class PeerApi(Protocol):
    """Where the peer region's payment API answers, and the key the canary sends it."""

    def locate(self) -> tuple[str, str]:
        """``(base URL, API key)``; raises DependencyUnavailable when they cannot be found."""


class WebhookEndpointStore(Protocol):
    """Where each client's webhook endpoints live, in both regions."""

    def endpoints_of(self, client: str) -> list[WebhookEndpoint]:
        """``client``'s endpoints, oldest first (a consistent read in this region)."""

    def endpoint(self, client: str, endpoint_id: str) -> WebhookEndpoint | None:
        """``client``'s endpoint with that id, or None (another client's is not there)."""

    def add(self, endpoint: WebhookEndpoint) -> None:
        """Store a new endpoint."""

    def replace(self, endpoint: WebhookEndpoint, *, read_version: int) -> bool:
        """Store ``endpoint`` over the version read; False if it changed or went meanwhile."""

    def remove(self, client: str, endpoint_id: str) -> bool:
        """Delete ``client``'s endpoint; False if it has none with that id."""


class WebhookSender(Protocol):
    """Sends one signed delivery to an endpoint."""

    def send(self, url: str, headers: Mapping[str, str], body: str) -> int | None:
        """The answer's status, or None when there was none; ``AddressRefused`` before connecting."""


class WebhookQueue(Protocol):
    """The webhook deliveries queue and its dead-letter queue."""

    def send(self, body: str, *, delay_seconds: int = 0) -> None:
        """Queue a delivery, to be received ``delay_seconds`` from now (15 minutes at most)."""

    def send_all(self, bodies: Sequence[str]) -> None:
        """Queue every one of ``bodies`` now (in batches); raises DependencyUnavailable if any was not."""

    def dead_letter(self, body: str) -> None:
        """Keep a delivery whose retries ran out, for the operator and a replay."""
