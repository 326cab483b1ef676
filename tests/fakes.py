"""In-memory implementations of the payment ports, for unit tests of the domain."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from chalicelib.cursor import decode_cursor, encode_cursor
from chalicelib.idempotency import KeyBinding
from chalicelib.items import scoped, unscoped
from chalicelib.orphans import Sweep
from chalicelib.payments import Announced, PaymentRecord, PaymentRequest, Rejection, stored_at
from chalicelib.ports import CustomerPage, PaymentLookup
from chalicelib.regions import RegionFlag
from chalicelib.schema import SYNTHETIC_CLIENTS
from chalicelib.schema import PaymentsTableSchema as Schema
from chalicelib.webhooks import WebhookEndpoint


class InMemoryPaymentRepository:
    """The payments table in dicts, laid out as :class:`DynamoPaymentRepository` lays it out.

    A claim per (client, transaction id), decided once; the record beside it, which is what the
    customer index lists; rejections per message. ``insert_new`` is atomic because the tests using
    it are single-threaded. ``tests/contract`` runs the same suite against this and against the
    DynamoDB adapter on moto, so a test passing on this fake says something about the real one.
    """

    def __init__(self) -> None:
        self.claims: dict[tuple[str, str], PaymentRecord] = {}
        self.records: dict[tuple[str, str], PaymentRecord] = {}
        self.rejections: dict[str, Rejection] = {}
        self.writes = 0

    def insert_new(
        self,
        record: PaymentRecord,
        *,
        alongside: Callable[[PaymentRecord | None], None] | None = None,
    ) -> PaymentRecord | None:
        key = (record.client, record.transaction_id)
        stored = self.claims.get(key)
        if stored is None:
            self.claims[key] = record
            self.writes += 1
        if alongside is not None:
            alongside(stored)
        # A writer that stopped between the claim and the record is completed by the next attempt.
        self.records.setdefault(key, stored or record)
        return stored

    def complete_records(self, records: list[PaymentRecord]) -> None:
        for record in records:
            self.records.setdefault((record.client, record.transaction_id), record)

    def get(self, client: str, transaction_id: str) -> PaymentRecord | None:
        return self.claims.get((client, transaction_id))

    def lookup(self, client: str, transaction_id: str) -> PaymentLookup:
        rejected = [
            r for r in self.rejections.values() if (r.client, r.transaction_id) == (client, transaction_id)
        ]
        return PaymentLookup(record=self.claims.get((client, transaction_id)), rejections=rejected)

    def record_rejection(self, rejection: Rejection) -> bool:
        if rejection.message_id in self.rejections:
            return False
        self.rejections[rejection.message_id] = rejection
        self.writes += 1
        return True

    def list_for_customer(
        self, client: str, customer_id: str, *, limit: int, cursor: str | None
    ) -> CustomerPage:
        newest_first = sorted(
            (r for r in self.records.values() if (r.client, r.customer_id) == (client, customer_id)),
            key=lambda r: (r.timestamp, r.transaction_id),
            reverse=True,
        )
        if cursor is not None:
            start = decode_cursor(cursor, client, customer_id)
            after = (int(start[Schema.SORT_KEY]["N"]), unscoped(start[Schema.PARTITION_KEY]["S"])[1])
            newest_first = [r for r in newest_first if (r.timestamp, r.transaction_id) < after]
        page = newest_first[:limit]
        more = len(newest_first) > limit
        return CustomerPage(payments=page, next_cursor=_cursor_after(page[-1]) if more else None)

    def stored_by(
        self, region: str, cursor: dict | None, *, limit: int = 100
    ) -> tuple[list[Announced], dict | None]:
        everything: list[Announced] = [*self.claims.values(), *self.rejections.values()]
        mine = [item for item in everything if item.region == region and item.client not in SYNTHETIC_CLIENTS]
        start = int(cursor["at"]) if cursor else 0
        page = mine[start : start + limit]
        return page, ({"at": start + limit} if start + limit < len(mine) else None)

    def events_of(
        self, client: str, *, since: int, until: int, cursor: dict | None, limit: int = 100
    ) -> tuple[list[Announced], dict | None]:
        everything: list[Announced] = [*self.claims.values(), *self.rejections.values()]
        mine = [
            item
            for item in everything
            if item.client == client and client not in SYNTHETIC_CLIENTS and since <= stored_at(item) < until
        ]
        start = int(cursor["at"]) if cursor else 0
        page = mine[start : start + limit]
        return page, ({"at": start + limit} if start + limit < len(mine) else None)

    def remove_payments(self, client: str, customer_id: str, *, older_than: int, limit: int) -> int:
        doomed = sorted(
            (
                key
                for key, r in self.records.items()
                if (r.client, r.customer_id) == (client, customer_id) and r.timestamp < older_than
            ),
            key=lambda key: self.records[key].timestamp,
        )[:limit]
        for key in doomed:
            del self.records[key]
            del self.claims[key]
        return len(doomed)


def _cursor_after(record: PaymentRecord) -> str:
    """The cursor DynamoDB's customer index would return after ``record``."""
    return encode_cursor(
        {
            Schema.PARTITION_KEY: {"S": scoped(record.client, record.transaction_id)},
            Schema.SORT_KEY: {"N": str(record.timestamp)},
            Schema.CUSTOMER_INDEX_PARTITION_KEY: {"S": scoped(record.client, record.customer_id)},
        }
    )


class InMemoryKeyBindings:
    """``/process``'s key bindings in a dict; the first live binding of a key stays."""

    def __init__(self) -> None:
        self.bindings: dict[str, KeyBinding] = {}

    def find(self, binding_id: str) -> KeyBinding | None:
        return self.bindings.get(binding_id)

    def bind(self, binding: KeyBinding) -> None:
        self.bindings.setdefault(binding.binding_id, binding)


class InMemorySweepLedger:
    """The observer's sweep of a lost peer, in memory."""

    def __init__(self) -> None:
        self.sweep = Sweep()

    def read(self) -> Sweep:
        return self.sweep

    def save(self, sweep: Sweep) -> None:
        self.sweep = sweep


class StaticClientDirectory:
    """A client directory with fixed entries (API key id -> client)."""

    def __init__(self, entries: dict[str, str]) -> None:
        self.entries = entries

    def client_of(self, api_key_id: str) -> str | None:
        return self.entries.get(api_key_id)


class RecordingNotifications:
    """Remembers every item announced; ``failing`` lists indices to report as not published."""

    def __init__(self, failing: set[int] | None = None) -> None:
        self.published: list[Announced] = []
        self.failing = failing or set()

    def announce(self, items: Sequence[Announced]) -> set[int]:
        failed = {i for i in self.failing if i < len(items)}
        self.published.extend(r for i, r in enumerate(items) if i not in failed)
        return failed


class RecordingQueue:
    """Remembers every payment enqueued."""

    def __init__(self) -> None:
        self.sent: list[PaymentRequest] = []

    def enqueue(self, payment: PaymentRequest, *, client: str, correlation_id: str | None) -> None:
        self.sent.append(payment)


class InMemoryRegionControl:
    """Flags in a dict; every region starts in service."""

    def __init__(self, **flags: bool) -> None:
        self.flags: dict[str, RegionFlag] = {region: RegionFlag(in_service=v) for region, v in flags.items()}

    def flag(self, region: str) -> RegionFlag:
        return self.flags.get(region, RegionFlag(in_service=True))

    def set_flag(self, region: str, flag: RegionFlag) -> None:
        self.flags[region] = flag


class StaticProbes:
    """Dependencies that always answer."""

    def table_answers(self) -> bool:
        return True

    def queue_answers(self) -> bool:
        return True

    def in_service(self) -> bool:
        return True

    def flag(self) -> RegionFlag:
        return RegionFlag(in_service=True)


class RecordingOpsNotices:
    """Remembers every ops notice."""

    def __init__(self) -> None:
        self.notices: list[tuple[str, dict]] = []

    def announce(self, subject: str, details: dict) -> None:
        self.notices.append((subject, details))


class InMemoryWebhookEndpoints:
    """The webhook endpoints table, in memory, with its conditional writes."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], WebhookEndpoint] = {}

    def endpoints_of(self, client: str) -> list[WebhookEndpoint]:
        return sorted((e for (c, _), e in self.items.items() if c == client), key=lambda e: e.created_at)

    def endpoint(self, client: str, endpoint_id: str) -> WebhookEndpoint | None:
        return self.items.get((client, endpoint_id))

    def add(self, endpoint: WebhookEndpoint) -> None:
        self.items.setdefault((endpoint.client, endpoint.endpoint_id), endpoint)

    def replace(self, endpoint: WebhookEndpoint, *, read_version: int) -> bool:
        key = (endpoint.client, endpoint.endpoint_id)
        if key not in self.items or self.items[key].version != read_version:
            return False
        self.items[key] = endpoint
        return True

    def remove(self, client: str, endpoint_id: str) -> bool:
        return self.items.pop((client, endpoint_id), None) is not None


class RecordingWebhookQueue:
    """The webhook deliveries queue: what was sent (with its delay) and what was dead-lettered."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, int]] = []
        self.dead: list[str] = []

    def send(self, body: str, *, delay_seconds: int = 0) -> None:
        self.sent.append((body, delay_seconds))

    def send_all(self, bodies: Sequence[str]) -> None:
        self.sent.extend((body, 0) for body in bodies)

    def dead_letter(self, body: str) -> None:
        self.dead.append(body)
