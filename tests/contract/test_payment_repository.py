"""One contract for every payment repository: the in-memory fake and the DynamoDB adapter on moto.

Chalice's todo sample runs one ``TestTodoDB`` suite against its in-memory store and again against
DynamoDB; this does the same for :class:`~chalicelib.ports.PaymentRepository`. The unit tests of
the domain use the fake, so the fake must do what the adapter does: a claim decided once per
client's transaction id, a record beside it (what the customer index lists), the repair of a
writer that stopped between the two, rejections once per message, pages newest first.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from functools import partial
from typing import Any

import pytest

from chalicelib import sdk
from chalicelib.adapters.payments_table import DynamoPaymentRepository
from chalicelib.errors import FieldError, InvalidQuery
from chalicelib.items import claim_attributes
from chalicelib.payments import STATUS_PROCESSED, PaymentRecord, Rejection
from chalicelib.ports import PaymentRepository
from chalicelib.schema import CANARY_CLIENT
from localenv.provision import RegionResources, local_client
from tests.conftest import REGION
from tests.fakes import InMemoryPaymentRepository

CLIENT, OTHER_CLIENT = "merchant-a", "merchant-b"
CUSTOMER = "cust-1"
T0 = 1_760_000_000_000


def payment(
    transaction_id: str, *, at: int = T0, client: str = CLIENT, amount: str = "10.00"
) -> PaymentRecord:
    return PaymentRecord(
        transaction_id=transaction_id,
        timestamp=at,
        customer_id=CUSTOMER,
        amount=Decimal(amount),
        currency="USD",
        status=STATUS_PROCESSED,
        fraud_review=False,
        region=REGION,
        client=client,
    )


def rejection(transaction_id: str, message_id: str, *, sent_at: int = T0) -> Rejection:
    return Rejection(
        transaction_id=transaction_id,
        message_id=message_id,
        sent_at=sent_at,
        rejected_at=sent_at + 5,
        region=REGION,
        errors=(FieldError("transaction_id", "is already used for another payment"),),
        client=CLIENT,
    )


class Store:
    """A repository under test, and how to leave a payment half-written as a crashed writer would."""

    def __init__(self, repository: PaymentRepository, claim_only: Any) -> None:
        self.repository = repository
        self.claim_only = claim_only


@pytest.fixture
def in_memory() -> Store:
    fake = InMemoryPaymentRepository()

    def claim_only(record: PaymentRecord) -> None:
        fake.claims[(record.client, record.transaction_id)] = record

    return Store(fake, claim_only)


@pytest.fixture
def dynamodb(local_aws: str, resources: RegionResources) -> Iterator[Store]:
    repository = DynamoPaymentRepository(
        table_name=resources.payments_table, client=partial(sdk.make_client, "dynamodb", REGION)
    )
    table = local_client("dynamodb", local_aws, REGION)

    def claim_only(record: PaymentRecord) -> None:
        table.put_item(TableName=resources.payments_table, Item=claim_attributes(record))

    yield Store(repository, claim_only)


@pytest.fixture(params=["in_memory", "dynamodb"])
def store(request: pytest.FixtureRequest) -> Store:
    """Each test runs once against the fake and once against DynamoDB (moto's server over HTTP)."""
    return request.getfixturevalue(request.param)


def whole_history(repository: PaymentRepository, client: str = CLIENT, limit: int = 2) -> list[str]:
    """Every page of ``client``'s customer, followed through its cursors: transaction ids in order."""
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(50):
        page = repository.list_for_customer(client, CUSTOMER, limit=limit, cursor=cursor)
        seen += [p.transaction_id for p in page.payments]
        cursor = page.next_cursor
        if cursor is None:
            return seen
    raise AssertionError("the pages never end")


def test_a_new_payment_is_stored_once_and_read_back(store: Store) -> None:
    repository = store.repository

    assert repository.insert_new(payment("order-1")) is None

    assert repository.get(CLIENT, "order-1") == payment("order-1")
    assert repository.lookup(CLIENT, "order-1").record == payment("order-1")
    assert repository.lookup(CLIENT, "order-1").rejections == []
    assert whole_history(repository) == ["order-1"]


def test_the_first_claim_decides_and_a_second_insert_gets_the_stored_payment(store: Store) -> None:
    repository = store.repository
    repository.insert_new(payment("order-1", amount="10.00"))

    second = repository.insert_new(payment("order-1", at=T0 + 1000, amount="99.00"))

    assert second == payment("order-1", amount="10.00")
    assert whole_history(repository) == ["order-1"]


def test_a_clients_ids_are_its_own(store: Store) -> None:
    repository = store.repository
    repository.insert_new(payment("order-1"))

    assert repository.insert_new(payment("order-1", client=OTHER_CLIENT, amount="5.00")) is None

    assert repository.get(CLIENT, "order-1") == payment("order-1")
    assert repository.get(OTHER_CLIENT, "order-1") == payment("order-1", client=OTHER_CLIENT, amount="5.00")
    assert repository.get(CLIENT, "order-2") is None
    assert whole_history(repository, OTHER_CLIENT) == ["order-1"]


def test_a_payment_whose_writer_stopped_after_the_claim_is_completed_by_the_next_attempt(
    store: Store,
) -> None:
    store.claim_only(payment("order-1"))
    # The claim alone already is the payment: readable by id, not yet in the customer's history.
    assert store.repository.get(CLIENT, "order-1") == payment("order-1")
    assert whole_history(store.repository) == []

    retried = store.repository.insert_new(payment("order-1", at=T0 + 1000))

    assert retried == payment("order-1")
    assert whole_history(store.repository) == ["order-1"]
    assert store.repository.insert_new(payment("order-1", at=T0 + 2000)) == payment("order-1")
    assert whole_history(store.repository) == ["order-1"]


def test_a_rejection_is_recorded_once_per_message(store: Store) -> None:
    repository = store.repository

    assert repository.record_rejection(rejection("order-1", "message-1")) is True
    assert repository.record_rejection(rejection("order-1", "message-1")) is False
    assert repository.record_rejection(rejection("order-1", "message-2", sent_at=T0 + 1)) is True

    lookup = repository.lookup(CLIENT, "order-1")
    assert lookup.record is None
    assert sorted(r.message_id for r in lookup.rejections) == ["message-1", "message-2"]
    assert repository.get(CLIENT, "order-1") is None
    assert whole_history(repository) == []


def test_a_rejected_reuse_is_shown_beside_the_payment(store: Store) -> None:
    repository = store.repository
    repository.insert_new(payment("order-1"))
    repository.record_rejection(rejection("order-1", "message-9", sent_at=T0 + 10))

    lookup = repository.lookup(CLIENT, "order-1")

    assert lookup.record == payment("order-1")
    assert [r.message_id for r in lookup.rejections] == ["message-9"]


def test_a_customers_history_pages_newest_first_and_every_payment_once(store: Store) -> None:
    repository = store.repository
    for n in range(5):
        repository.insert_new(payment(f"order-{n}", at=T0 + n * 1000))
    repository.insert_new(payment("theirs", at=T0 + 9000, client=OTHER_CLIENT))

    assert whole_history(repository, limit=2) == ["order-4", "order-3", "order-2", "order-1", "order-0"]
    first = repository.list_for_customer(CLIENT, CUSTOMER, limit=10, cursor=None)
    assert first.next_cursor is None
    assert repository.list_for_customer(CLIENT, "nobody", limit=10, cursor=None).payments == []


def test_another_clients_cursor_is_refused(store: Store) -> None:
    repository = store.repository
    for n in range(3):
        repository.insert_new(payment(f"order-{n}", at=T0 + n * 1000, client=OTHER_CLIENT))
    cursor = repository.list_for_customer(OTHER_CLIENT, CUSTOMER, limit=1, cursor=None).next_cursor
    assert cursor is not None

    with pytest.raises(InvalidQuery):
        repository.list_for_customer(CLIENT, CUSTOMER, limit=1, cursor=cursor)


def test_removal_takes_the_oldest_payments_claim_and_record(store: Store) -> None:
    repository = store.repository
    for n in range(4):
        repository.insert_new(payment(f"order-{n}", at=T0 + n * 1000))

    removed = repository.remove_payments(CLIENT, CUSTOMER, older_than=T0 + 2500, limit=2)

    assert removed == 2
    assert sorted(whole_history(repository)) == ["order-2", "order-3"]
    assert repository.get(CLIENT, "order-0") is None
    # Removed means removed: the id can be paid again.
    assert repository.insert_new(payment("order-0", at=T0 + 5000)) is None


def every_event(repository: PaymentRepository, *, since: int, until: int, client: str = CLIENT) -> list[str]:
    """Every page of ``client``'s events in ``[since, until)``, followed through their cursors."""
    seen: list[str] = []
    cursor: dict[str, Any] | None = None
    for _ in range(50):
        items, cursor = repository.events_of(client, since=since, until=until, cursor=cursor, limit=2)
        seen += [
            f"rejected {item.message_id}" if isinstance(item, Rejection) else item.transaction_id
            for item in items
        ]
        if cursor is None:
            return seen
    raise AssertionError("the pages never end")


def test_a_clients_events_over_a_time_range_are_its_payments_and_rejections_each_once(store: Store) -> None:
    repository = store.repository
    for n in range(6):
        repository.insert_new(payment(f"order-{n}", at=T0 + n * 1000))
    repository.record_rejection(rejection("order-1", "message-1", sent_at=T0 + 1500))
    repository.insert_new(payment("theirs", at=T0 + 2000, client=OTHER_CLIENT))
    repository.insert_new(payment("probe", at=T0 + 2000, client=CANARY_CLIENT))

    in_range = every_event(repository, since=T0 + 1000, until=T0 + 4000)

    # From the first millisecond of the range up to, not including, its end.
    assert sorted(in_range) == ["order-1", "order-2", "order-3", "rejected message-1"]
    assert every_event(repository, since=T0, until=T0 + 10_000, client=OTHER_CLIENT) == ["theirs"]
    assert every_event(repository, since=T0, until=T0 + 10_000, client=CANARY_CLIENT) == []
    assert every_event(repository, since=T0 + 6000, until=T0 + 10_000) == []


def test_the_adapter_reads_again_the_keys_a_batch_left_unprocessed(
    local_aws: str, resources: RegionResources
) -> None:
    """DynamoDB may answer a batch read in part (throttled): a replay's page still gets every item."""
    real = sdk.make_client("dynamodb", REGION)

    class PartlyAnswering:
        def __init__(self) -> None:
            self.batches = 0

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
            self.batches += 1
            ((table, request),) = RequestItems.items()
            first, *rest = request["Keys"]
            answer = real.batch_get_item(RequestItems={table: {"Keys": [first]}})
            return {**answer, "UnprocessedKeys": {table: {"Keys": rest}} if rest else {}}

    client = PartlyAnswering()
    repository = DynamoPaymentRepository(
        table_name=resources.payments_table, client=lambda: client, sleep=lambda _: None
    )
    for n in range(3):
        repository.insert_new(payment(f"order-{n}", at=T0 + n, client="merchant-c"))

    assert sorted(every_event(repository, since=T0, until=T0 + 10, client="merchant-c")) == [
        "order-0",
        "order-1",
        "order-2",
    ]
    assert client.batches >= 3
