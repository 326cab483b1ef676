"""The in-service flag, health evaluation and its cache, and the last-region rule: no AWS."""

from __future__ import annotations

import pytest

from chalicelib.failover import FailoverAction, FailoverDecision, guard_last_region
from chalicelib.regions import Cached, HealthCheck, HealthReport, RegionFlag, evaluate_health


def test_a_flag_round_trips_with_its_audit_fields() -> None:
    flag = RegionFlag(in_service=False, changed_by="arn:aws:iam::1:user/ops", reason="drill", changed_at="t")

    assert RegionFlag.from_text(flag.to_text()) == flag


@pytest.mark.parametrize("text", ["", "true", "{}", '{"in_service": "yes"}', "[1]"])
def test_an_unreadable_flag_counts_as_out_of_service(text: str) -> None:
    assert RegionFlag.from_text(text).in_service is False


def test_the_first_failing_check_names_the_report() -> None:
    def broken() -> bool:
        raise TimeoutError

    report = evaluate_health(
        "r",
        [
            (HealthCheck.IN_SERVICE_FLAG, lambda: True),
            (HealthCheck.PAYMENTS_TABLE, broken),
            (HealthCheck.PAYMENT_QUEUE, lambda: False),
        ],
    )

    assert report._replace(cause=None) == HealthReport(healthy=False, region="r", failing="payments table")
    assert isinstance(report.cause, TimeoutError)
    assert "cause" not in report.to_json()
    assert evaluate_health("r", [(HealthCheck.IN_SERVICE_FLAG, lambda: True)]).healthy


def test_the_cache_keeps_a_report_until_it_expires() -> None:
    now = [0.0]
    cache: Cached[HealthReport] = Cached(lambda: now[0], ttl=5)
    calls: list[int] = []

    def compute() -> HealthReport:
        calls.append(1)
        return HealthReport(True, "r")

    cache.get(compute)
    now[0] = 4.9
    cache.get(compute)
    now[0] = 5.0
    cache.get(compute)

    assert len(calls) == 2


def test_failover_never_takes_out_the_last_region_in_service() -> None:
    take_out = FailoverDecision(FailoverAction.TAKE_REGION_OUT_OF_SERVICE, "us-east-1", "5xx in ALARM")

    assert guard_last_region(take_out, peer_in_service=True) == take_out
    assert guard_last_region(take_out, peer_in_service=False).action is FailoverAction.REFUSE_LAST_REGION
    nothing = FailoverDecision(FailoverAction.NONE, "us-east-1", "not critical")
    assert guard_last_region(nothing, peer_in_service=False) == nothing


def test_a_flag_written_before_draining_existed_still_accepts_and_a_draining_one_round_trips() -> None:
    old = RegionFlag.from_text('{"in_service": true, "changed_by": "x", "reason": "y", "changed_at": ""}')
    draining = RegionFlag(in_service=True, reason="switchover", accepting=False)

    assert old.accepting and not old.draining
    assert RegionFlag.from_text(draining.to_text()) == draining and draining.draining
    assert not RegionFlag.from_text("not json").accepting
