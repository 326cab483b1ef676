"""``payments-dr`` status, failover and failback against the running local environment."""

from __future__ import annotations

import time
import uuid

import pytest
import requests

from chalicelib.failover_numbers import FAILBACK_MARKER_TIMEOUT_SECONDS
from localenv.environment import LocalEnvironment
from operations import regions
from tests.integration.conftest import PRIMARY, SECONDARY, eventually, target_of

pytestmark = pytest.mark.integration


def health(environment: LocalEnvironment, region: str) -> int:
    return requests.get(environment.api_url(region) + "/health", timeout=10).status_code


def test_status_shows_both_regions(environment: LocalEnvironment) -> None:
    def both_healthy() -> list[regions.RegionStatus] | None:
        # A moment after the environment starts, /health may still be finding its dependencies.
        rows = regions.status(target_of(environment))
        return rows if all(row.in_service and row.health == "healthy" for row in rows) else None

    rows = eventually(both_healthy, timeout=15) or regions.status(target_of(environment))
    table = regions.render_status(rows)

    assert [row.region for row in rows] == [PRIMARY, SECONDARY]
    assert all(row.in_service and row.health == "healthy" for row in rows), table
    assert PRIMARY in table and "DLQ" in table
    # Each region's peer sees it work (the first canary runs a second after start).
    assert eventually(
        lambda: all(row.canary.startswith("OK for") for row in regions.status(target_of(environment))),
        timeout=15,
    )


def test_status_shows_each_regions_share_of_payments(environment: LocalEnvironment) -> None:
    # Three payments in the primary, one in the secondary: the functions' own metric (embedded
    # metric format, which CloudWatch extracts in AWS and the local environment forwards) counts them.
    tag, target = uuid.uuid4().hex[:8], target_of(environment)
    since = time.time() - 1  # other tests' payments before this one are not counted
    for n, region in enumerate([PRIMARY, PRIMARY, PRIMARY, SECONDARY]):
        body = {"transaction_id": f"share-{tag}-{n}", "customer_id": "c", "amount": "1.00", "currency": "USD"}
        answer = requests.post(
            environment.api_url(region) + "/process",
            json=body,
            headers={"x-api-key": environment.api_key},
            timeout=10,
        )
        assert answer.status_code == 201

    def counted() -> dict[str, int | None]:
        counts = {
            region: regions.payments_processed(target, region, since) for region in (PRIMARY, SECONDARY)
        }
        return counts if counts == {PRIMARY: 3, SECONDARY: 1} else {}

    counts = eventually(counted, timeout=15)
    rows = regions.status(target)

    assert counts, "the payments never reached the local CloudWatch"
    assert regions.shares(counts) == {PRIMARY: 0.75, SECONDARY: 0.25}
    assert all(row.payments_recent for row in rows)
    assert "share (5 min)" in regions.render_status(rows)


def test_failover_then_a_checked_failback(environment: LocalEnvironment) -> None:
    target = target_of(environment)

    out = regions.failover(target, SECONDARY, reason="drill: take the secondary out")
    unhealthy = eventually(lambda: health(environment, SECONDARY) == 503, timeout=15)
    with pytest.raises(regions.RefusedError, match="no region"):
        regions.failover(target, PRIMARY, reason="would leave no region")
    back, lag = regions.failback(target, SECONDARY, reason="drill over", canary_passed_for=2)
    healthy_again = eventually(lambda: health(environment, SECONDARY) == 200, timeout=15)

    assert out.in_service is False and "drill" in out.reason and out.changed_by
    assert unhealthy and healthy_again
    assert back.in_service is True and back.reason == "drill over"
    assert 0 <= lag < FAILBACK_MARKER_TIMEOUT_SECONDS
    assert regions.flag_of(target, PRIMARY).in_service is True


def test_failback_is_refused_while_the_region_itself_is_broken(environment: LocalEnvironment) -> None:
    target = target_of(environment)
    sqs = environment.client("sqs", SECONDARY)
    url = environment.resources[SECONDARY].payment_queue_url
    kept = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout", "RedrivePolicy"])[
        "Attributes"
    ]
    regions.failover(target, SECONDARY, reason="queue trouble")
    sqs.delete_queue(QueueUrl=url)
    try:
        eventually(
            lambda: regions.health_of(target, SECONDARY)[1].get("failing") == "payment queue", timeout=15
        )
        with pytest.raises(regions.RefusedError, match="payment queue"):
            regions.failback(target, SECONDARY, reason="too early")
        assert regions.flag_of(target, SECONDARY).in_service is False
    finally:
        sqs.create_queue(QueueName=url.rsplit("/", 1)[1], Attributes=kept)
        eventually(
            lambda: regions.health_of(target, SECONDARY)[1].get("failing") == "in-service flag", timeout=15
        )
        regions.failback(target, SECONDARY, reason="queue restored", canary_passed_for=2)


def test_failback_waits_until_the_peers_canary_has_passed_long_enough(environment: LocalEnvironment) -> None:
    target = target_of(environment)
    regions.failover(target, SECONDARY, reason="canary check")
    try:
        state, held = regions.canary_state(target, SECONDARY)
        with pytest.raises(regions.RefusedError, match="needs 3600 s"):
            regions.failback(target, SECONDARY, reason="too soon", canary_passed_for=3600)
        assert state == "OK" and held is not None
        assert regions.flag_of(target, SECONDARY).in_service is False
    finally:
        regions.failback(target, SECONDARY, reason="canary check over", canary_passed_for=0)
