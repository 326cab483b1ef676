"""The payment write path under multi-Region strong consistency's rules, on moto's server over HTTP.

The local AWS refuses on every payments table what AWS documents an MRSC table refuses, and with
the switch on it acknowledges a write only once the peer region has it and answers a write of an
item another region is writing with ``ReplicatedWriteConflictException``
(:mod:`localenv.moto_fixes`). Both regions' repositories then race on the same transaction ids.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal
from functools import partial
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError

from chalicelib import sdk
from chalicelib.adapters.payments_table import DynamoPaymentRepository
from chalicelib.errors import TransactionConflict
from chalicelib.items import is_payment_record, unscoped
from chalicelib.payments import PaymentRecord, PaymentRequest
from chalicelib.processing import process_payment
from localenv import moto_fixes
from localenv.provision import RegionResources, local_client, provision_region
from tests.conftest import PEER_REGION, REGION, SUFFIX

REGIONS = (REGION, PEER_REGION)
RACES = 25


@pytest.fixture
def both_regions(local_aws: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, RegionResources]]:
    """Fresh payment resources in both regions; the functions' credentials in this process."""
    requests.post(f"{local_aws}/moto-api/reset", timeout=10).raise_for_status()
    provisioned = {
        region: provision_region(local_aws, region, SUFFIX, peer_region=peer)
        for region, peer in (REGIONS, REGIONS[::-1])
    }
    for name, value in provisioned[REGION].function_environment(local_aws).items():
        monkeypatch.setenv(name, value)
    yield provisioned
    moto_fixes.use_strong_consistency([])


@pytest.fixture
def strong(both_regions: dict[str, RegionResources]) -> Iterator[dict[str, RegionResources]]:
    """Both regions' payments tables under multi-Region strong consistency."""
    moto_fixes.use_strong_consistency(list(REGIONS))
    yield both_regions
    moto_fixes.use_strong_consistency([])


def dynamodb(local_aws: str, region: str) -> Any:
    return local_client("dynamodb", local_aws, region)


def repository(resources: RegionResources, region: str) -> DynamoPaymentRepository:
    return DynamoPaymentRepository(
        table_name=resources.payments_table, client=partial(sdk.make_client, "dynamodb", region)
    )


def payment(transaction_id: str, amount: str) -> PaymentRequest:
    return PaymentRequest(
        transaction_id=transaction_id, customer_id="cust-race", amount=Decimal(amount), currency="USD"
    )


def stored(local_aws: str, table: str, region: str) -> dict[str, list[dict[str, Any]]]:
    """Every item of ``table`` in ``region``, by transaction id."""
    found: dict[str, list[dict[str, Any]]] = {}
    for item in dynamodb(local_aws, region).scan(TableName=table, ConsistentRead=True)["Items"]:
        found.setdefault(unscoped(item["transaction_id"]["S"])[1], []).append(item)
    return found


@pytest.mark.parametrize(
    ("operation", "request_for"),
    [
        (
            "transact_write_items",
            lambda table: {
                "TransactItems": [
                    {
                        "Put": {
                            "TableName": table,
                            "Item": {"transaction_id": {"S": "t"}, "timestamp": {"N": "1"}},
                        }
                    }
                ]
            },
        ),
        (
            "transact_get_items",
            lambda table: {
                "TransactItems": [
                    {
                        "Get": {
                            "TableName": table,
                            "Key": {"transaction_id": {"S": "t"}, "timestamp": {"N": "1"}},
                        }
                    }
                ]
            },
        ),
        (
            "update_time_to_live",
            lambda table: {
                "TableName": table,
                "TimeToLiveSpecification": {"Enabled": True, "AttributeName": "expires"},
            },
        ),
    ],
)
def test_the_payments_table_refuses_what_an_mrsc_table_refuses_in_every_mode(
    local_aws: str, both_regions: dict[str, RegionResources], operation: str, request_for: Any
) -> None:
    client = dynamodb(local_aws, REGION)

    with pytest.raises(ClientError) as refused:
        getattr(client, operation)(**request_for(both_regions[REGION].payments_table))

    assert refused.value.response["Error"]["Code"] == "ValidationException"


def test_the_idempotency_table_is_not_mrsc_and_may_have_its_ttl(
    local_aws: str, both_regions: dict[str, RegionResources]
) -> None:
    client = dynamodb(local_aws, REGION)
    table = both_regions[REGION].idempotency_table

    client.update_time_to_live(
        TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"}
    )

    described = client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert described["TimeToLiveStatus"] == "ENABLED"


def test_an_acknowledged_payment_is_already_in_the_peer_region(
    local_aws: str, strong: dict[str, RegionResources]
) -> None:
    outcome = process_payment(
        payment("txn-rpo0", "5.00"),
        client="merchant-a",
        repository=repository(strong[REGION], REGION),
        region=REGION,
    )

    in_peer = stored(local_aws, strong[PEER_REGION].payments_table, PEER_REGION)["txn-rpo0"]
    assert outcome.created
    assert sorted(item["timestamp"]["N"] for item in in_peer) == ["0", str(outcome.record.timestamp)]


def race(resources: dict[str, RegionResources], transaction_id: str) -> dict[str, Any]:
    """One payment sent to both regions at the same moment; what each region answered."""
    start = threading.Barrier(len(REGIONS))
    answers: dict[str, Any] = {}

    def send(region: str) -> None:
        start.wait()
        try:
            answers[region] = process_payment(
                payment(transaction_id, "10.00"),
                client="merchant-a",
                repository=repository(resources[region], region),
                region=region,
            )
        except TransactionConflict as conflict:
            answers[region] = conflict

    threads = [threading.Thread(target=send, args=(region,)) for region in REGIONS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_one_transaction_id_sent_to_both_regions_at_once_makes_exactly_one_payment(
    local_aws: str, strong: dict[str, RegionResources]
) -> None:
    winners: list[PaymentRecord] = []
    conflicts_before = moto_fixes.STRONG.conflicts
    for n in range(RACES):
        answers = race(strong, f"txn-race-{n}")
        created = [a.record for a in answers.values() if a.created]
        # Exactly one region made the payment; the other answered with that same payment.
        assert len(created) == 1, answers
        assert all(a.record == created[0] for a in answers.values()), answers
        winners.append(created[0])

    # Some of the races met MRSC's write conflict (retried, then the winner's claim was read).
    assert moto_fixes.STRONG.conflicts > conflicts_before
    for region in REGIONS:
        items = stored(local_aws, strong[region].payments_table, region)
        for record in winners:
            kept = items[record.transaction_id]
            assert len(kept) == 2  # one claim, one record, in both regions
            [kept_record] = [item for item in kept if is_payment_record(item)]
            assert kept_record["region"]["S"] == record.region


def test_without_strong_consistency_the_same_race_makes_a_payment_in_each_region(
    local_aws: str, both_regions: dict[str, RegionResources]
) -> None:
    """The switch is what makes the race safe: unreplicated, each region claims the id itself."""
    answers = race(both_regions, "txn-race-eventual")

    assert all(a.created for a in answers.values())
    for region in REGIONS:
        assert "txn-race-eventual" in stored(local_aws, both_regions[region].payments_table, region)
