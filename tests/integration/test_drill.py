"""The DR drill in short form, for every fault: 0 acknowledged payments lost, 0 duplicates, RTO in parts."""

from __future__ import annotations

from pathlib import Path

import pytest

from drills.scenario import DrillPlan, run_drill
from drills.timeline import draw_timeline
from localenv.environment import LocalEnvironment, RegionPlan
from localenv.network import free_port
from operations import regions
from tests.integration.conftest import CANARY_SECONDS, PRIMARY, SECONDARY, target_of

pytestmark = pytest.mark.integration


def test_the_drill_fails_over_without_losing_or_doubling_a_payment_and_fails_back(
    environment: LocalEnvironment, tmp_path
) -> None:
    target = target_of(environment)
    plan = DrillPlan(rate_per_second=8, steady_seconds=3, outage_seconds=8, recovered_seconds=3)

    report = run_drill(environment, target, plan)
    print(report.table())
    picture = draw_timeline(report, target.regions, tmp_path / "drill.png")

    assert report.lost == []
    assert report.duplicates == []
    assert report.rto_seconds is not None and report.rto_seconds < plan.outage_seconds
    assert None not in (report.detect_at, report.decide_at) and report.passed
    assert any(a.region == SECONDARY and a.acknowledged for a in report.attempts)
    # After failback the client is back on the primary, and the primary is in service.
    assert report.attempts[-1].region == PRIMARY and report.attempts[-1].acknowledged
    assert regions.flag_of(target, PRIMARY).in_service is True
    assert picture.stat().st_size > 10_000


def test_a_gray_failure_moves_traffic_on_the_observers_canary_alone(tmp_path: Path) -> None:
    plans = [RegionPlan(PRIMARY, free_port()), RegionPlan(SECONDARY, free_port())]
    # The primary's own orchestrator never hears of anything: only the secondary's canary can act.
    with LocalEnvironment(
        plans, log_dir=tmp_path, canary_seconds=CANARY_SECONDS, orchestrators_off=frozenset({PRIMARY})
    ) as environment:
        target = target_of(environment)
        plan = DrillPlan(
            rate_per_second=8, steady_seconds=2, outage_seconds=8, recovered_seconds=2, fault="gray"
        )

        report = run_drill(environment, target, plan)
        print(report.table())

    assert report.lost == [] and report.duplicates == []
    assert report.detected_by == "first failed canary"
    assert report.primary_orchestrator_idle is True
    assert report.decide_at is not None and report.failover_at is not None
    assert report.passed


def test_a_switchover_during_paused_replication_waits_for_it_and_loses_nothing(tmp_path: Path) -> None:
    plans = [RegionPlan(PRIMARY, free_port()), RegionPlan(SECONDARY, free_port())]
    # An environment of its own: the pause would show in the shared one's replication lag.
    with LocalEnvironment(plans, log_dir=tmp_path, canary_seconds=CANARY_SECONDS) as environment:
        target = target_of(environment)
        plan = DrillPlan(
            rate_per_second=8,
            steady_seconds=2,
            outage_seconds=6,
            recovered_seconds=2,
            fault="replication-paused",
        )

        report = run_drill(environment, target, plan)
        print(report.table())
        in_service = regions.flag_of(target, PRIMARY).in_service

    assert report.lost == [] and report.duplicates == []
    assert report.resumed_at is not None and report.caught_up_at is not None
    assert report.caught_up_at >= report.resumed_at
    assert report.passed
    assert in_service is True  # failed back after the drill
