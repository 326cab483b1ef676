"""In-memory implementations of the payment ports, for unit tests of the domain."""

from __future__ import annotations

from collections.abc import Sequence

from chalicelib.payments import Announced, PaymentRecord, PaymentRequest, Rejection
from chalicelib.ports import CustomerPage, PaymentLookup
from chalicelib.regions import RegionFlag


class InMemoryPaymentRepository:
    """Keeps payments in a dict by (client, transaction id); ``insert_new`` is atomic because the test is single-threaded."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], PaymentRecord] = {}
        self.rejections: dict[str, Rejection] = {}
        self.writes = 0

    def insert_new(self, record: PaymentRecord) -> PaymentRecord | None:
        key = (record.client, record.transaction_id)
        if key in self.records:
            return self.records[key]
        self.records[key] = record
        self.writes += 1
        return None

    def get(self, client: str, transaction_id: str) -> PaymentRecord | None:
        return self.records.get((client, transaction_id))

    def lookup(self, client: str, transaction_id: str) -> PaymentLookup:
        rejected = [
            r for r in self.rejections.values() if (r.client, r.transaction_id) == (client, transaction_id)
        ]
        return PaymentLookup(record=self.records.get((client, transaction_id)), rejections=rejected)

    def record_rejection(self, rejection: Rejection) -> bool:
        if rejection.message_id in self.rejections:
            return False
        self.rejections[rejection.message_id] = rejection
        self.writes += 1
        return True

    def list_for_customer(
        self, client: str, customer_id: str, *, limit: int, cursor: str | None
    ) -> CustomerPage:
        mine = sorted(
            (r for r in self.records.values() if (r.client, r.customer_id) == (client, customer_id)),
            key=lambda r: r.timestamp,
            reverse=True,
        )
        return CustomerPage(payments=mine[:limit], next_cursor=None)

    def remove_payments(self, client: str, customer_id: str, *, older_than: int, limit: int) -> int:
        doomed = [
            key
            for key, r in self.records.items()
            if (r.client, r.customer_id) == (client, customer_id) and r.timestamp < older_than
        ][:limit]
        for key in doomed:
            del self.records[key]
        return len(doomed)


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
