"""`make run CONSISTENCY=strong`, the drills and the races under it: the payment path under MRSC's rules.

The local AWS refuses transactions and TTL on the payments table (as it does in every mode) and
acknowledges a payments write only once the peer region has it; nothing but the Idempotency-Key
table is replicated from the streams. Active-active rests on it: both regions take payments, so
one transaction id can reach both at the same moment.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from chalicelib.names import Topology
from drills.riders import BOTH_ENDPOINTS, ONE_DOMAIN, RidersPlan, run_riders_drill
from drills.scenario import DrillPlan, run_drill
from localenv.environment import LocalEnvironment
from operations import regions
from payments_client import PaymentsClient, PaymentsUnavailable, RetryPolicy
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


def test_the_active_active_drill_rides_through_an_api_fault_with_both_regions_warm(
    strong_environment: LocalEnvironment,
) -> None:
    plan = RidersPlan(
        topology=Topology.ACTIVE_ACTIVE,
        fault="api",
        steady_seconds=4,
        outage_seconds=6,
        recovered_seconds=3,
        rate_per_rider=3,
    )

    report = run_riders_drill(strong_environment, target_of(strong_environment), plan)
    print(report.table())

    assert min(report.shares_before.values()) >= 0.40, report.shares_before
    assert report.kinds[BOTH_ENDPOINTS].caller_errors == 0
    assert report.kinds[BOTH_ENDPOINTS].paying_again_after is not None
    # A client holding one domain pays again in the survivor once DNS answers with it.
    assert report.kinds[ONE_DOMAIN].paying_again_after is not None
    assert report.lost == [] and report.duplicates == []
    assert report.passed


RACES = 1000
RACERS = 32  # requests in flight at once: sixteen races


def race(environment: LocalEnvironment, tag: str, n: int, *, same_key: bool) -> list[int]:
    """One transaction id sent to both regions at the same moment; the two callers' statuses."""
    body = {"transaction_id": f"{tag}-{n:04d}", "customer_id": "racer", "amount": "5.00", "currency": "USD"}
    keys = [f"{tag}-{n}"] * 2 if same_key else [f"{tag}-{n}-{region}" for region in (PRIMARY, SECONDARY)]
    start = threading.Barrier(2, timeout=30)
    statuses = [0, 0]

    def send(i: int, region: str) -> None:
        start.wait()
        statuses[i] = post(environment, region, "/process", body, {"Idempotency-Key": keys[i]}).status_code

    with ThreadPoolExecutor(max_workers=2) as pair:
        list(pair.map(send, (0, 1), (PRIMARY, SECONDARY)))
    return statuses


def run_races(environment: LocalEnvironment, races: int) -> tuple[list[str], Counter[str]]:
    """``races`` races, half with one Idempotency-Key for both callers and half with one each.

    Returns what broke the promise (a race made no payment or two, or a caller got an answer
    other than the payment or a 409) and how often each pair of statuses came back.
    """
    tag = f"race-{uuid.uuid4().hex[:6]}"
    with ThreadPoolExecutor(max_workers=RACERS // 2) as pool:
        answers = list(pool.map(lambda n: race(environment, tag, n, same_key=n % 2 == 0), range(races)))

    def both() -> list[Counter[str]]:
        return [environment.payment_records(region, tag) for region in (PRIMARY, SECONDARY)]

    # Replication has settled when both regions hold the same (under strong consistency at once).
    eventually(lambda: len(set(map(frozenset, map(Counter.items, both())))) == 1)
    stored = both()
    broken = []
    for n, statuses in enumerate(answers):
        transaction_id = f"{tag}-{n:04d}"
        counts = [region_records[transaction_id] for region_records in stored]
        if counts != [1, 1]:
            broken.append(f"{transaction_id}: stored {counts} times in the two regions, answered {statuses}")
        if min(statuses) not in (200, 201) or any(s not in (200, 201, 409) for s in statuses):
            broken.append(f"{transaction_id}: answered {statuses}")
    return broken, Counter(str(sorted(statuses)) for statuses in answers)


def test_a_thousand_races_of_one_transaction_id_to_both_regions_each_make_one_payment(
    strong_environment: LocalEnvironment,
) -> None:
    broken, outcomes = run_races(strong_environment, RACES)
    print(f"{RACES} races under strong consistency: {dict(outcomes)}")

    assert broken == []
    assert sum(outcomes.values()) == RACES


def test_the_same_races_under_eventual_consistency_make_a_payment_in_each_region(
    environment: LocalEnvironment,
) -> None:
    """The planted-bad twin: the eventually consistent table, which active-active refuses."""
    broken, _ = run_races(environment, 40)

    assert any("stored [2, 2] times" in b for b in broken), broken


def test_a_switchover_in_active_active_drains_with_nothing_lost_while_both_regions_take_payments(
    strong_environment: LocalEnvironment,
) -> None:
    """Two merchants at home in each region pay through a planned switchover of the primary."""
    environment, target = strong_environment, target_of(strong_environment)
    urls = [environment.api_url(region) for region in (PRIMARY, SECONDARY)]
    policy = RetryPolicy(timeout=2.0, base_delay=0.1, max_delay=1.0, health_interval=0.5, return_after=60)
    clients = [
        PaymentsClient(environment.api_key, endpoints=urls[home:] + urls[:home], policy=policy)
        for home in (0, 0, 1, 1)
    ]
    tag = f"switch-{uuid.uuid4().hex[:6]}"
    acknowledged: dict[str, str] = {}
    errors: list[str] = []
    stop = threading.Event()

    def pay(n: int, client: PaymentsClient) -> None:
        sequence = 0
        while not stop.is_set():
            sequence += 1
            txn = f"{tag}-{n}-{sequence:04d}"
            body = {"transaction_id": txn, "customer_id": "switch", "amount": "3.00", "currency": "USD"}
            try:
                answer = client.process(body)
            except PaymentsUnavailable as error:
                errors.append(str(error))
                continue
            if answer.status in (200, 201):
                acknowledged[txn] = answer.endpoint
            else:
                errors.append(f"{txn}: {answer.status}")
            stop.wait(0.2)

    threads = [threading.Thread(target=pay, args=(n, c), daemon=True) for n, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    try:
        eventually(lambda: len({acknowledged[t] for t in list(acknowledged)}) == 2, timeout=15)
        report = regions.switchover(target, PRIMARY, reason="test: planned move in active-active")
        moved_at = len(acknowledged)
        eventually(lambda: len(acknowledged) >= moved_at + 8, timeout=15)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        regions.failback(target, PRIMARY, reason="test over", canary_passed_for=2)
    stored = [environment.payment_records(region, tag) for region in (PRIMARY, SECONDARY)]

    assert report.to_region == SECONDARY
    assert errors == []
    assert {t for t, n in stored[0].items() if n == 1} >= set(acknowledged)
    assert all(records == stored[0] for records in stored) and set(stored[0].values()) == {1}
