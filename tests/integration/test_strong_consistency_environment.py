"""`make run CONSISTENCY=strong` and the region drill under it: the payment path under MRSC's rules.

The local AWS refuses transactions and TTL on the payments table (as it does in every mode) and
acknowledges a payments write only once the peer region has it; nothing but the Idempotency-Key
table is replicated from the streams.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from drills.scenario import DrillPlan, run_drill
from localenv.environment import LocalEnvironment
from tests.integration.conftest import PRIMARY, SECONDARY, both_regions, eventually, target_of
from tests.integration.test_local_environment import get, post, records

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def strong_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEnvironment]:
    with both_regions(tmp_path_factory.mktemp("localenv-strong"), strong_consistency=True) as local:
        yield local


def dead_letters(environment: LocalEnvironment, region: str) -> int:
    attributes = environment.client("sqs", region).get_queue_attributes(
        QueueUrl=environment.resources[region].payment_dlq_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def test_the_payment_routes_serve_under_strong_consistency(strong_environment: LocalEnvironment) -> None:
    environment = strong_environment
    body = {"transaction_id": "mrsc-1", "customer_id": "cust-m", "amount": "12.50", "currency": "USD"}

    created = post(environment, PRIMARY, "/process", body)
    repeated = post(environment, PRIMARY, "/process", body)
    reused = post(environment, PRIMARY, "/process", {**body, "amount": "13.00"})
    # Acknowledged means already in the peer region: no replication delay to wait out.
    [in_peer] = records(environment, SECONDARY, "mrsc-1")

    assert (created.status_code, repeated.status_code, reused.status_code) == (201, 200, 409)
    assert repeated.json() == created.json()
    assert in_peer["amount"]["N"] == "12.5"


def test_a_validated_payment_is_stored_readable_in_the_other_region_and_nothing_dead_lettered(
    strong_environment: LocalEnvironment,
) -> None:
    environment = strong_environment
    body = {"transaction_id": "mrsc-queued", "customer_id": "cust-m", "amount": "3.30", "currency": "EUR"}

    accepted = post(environment, PRIMARY, "/validate", body)
    read = eventually(lambda: get(environment, SECONDARY, "/payments/mrsc-queued").status_code == 200)

    assert accepted.status_code == 202
    assert read, "the queued payment never became readable in the other region"
    assert get(environment, SECONDARY, "/payments/mrsc-queued").json()["amount"] == "3.30"
    assert dead_letters(environment, PRIMARY) == dead_letters(environment, SECONDARY) == 0
    log = environment.log_of(PRIMARY, "events")
    assert "ValidationException" not in log and "FAILED" not in log


def test_the_region_drill_under_strong_consistency_loses_nothing_even_for_good(
    strong_environment: LocalEnvironment,
) -> None:
    environment = strong_environment
    plan = DrillPlan(
        rate_per_second=8, steady_seconds=3, outage_seconds=8, recovered_seconds=3, fault="region"
    )

    report = run_drill(environment, target_of(environment), plan)
    print(report.table())

    assert report.consistency == "strong"
    assert report.at_risk == []  # had the primary never come back: RPO 0, measured
    assert report.lost == [] and report.duplicates == []
    assert report.passed
