"""The DR drill in short form: 0 acknowledged payments lost, 0 duplicates, a measured RTO."""

from __future__ import annotations

import pytest

from localenv.environment import LocalEnvironment
from operations import regions
from operations.drill import DrillPlan, draw_timeline, run_drill
from tests.integration.conftest import PRIMARY, SECONDARY, target_of

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
    assert any(a.region == SECONDARY and a.acknowledged for a in report.attempts)
    # After failback the client is back on the primary, and the primary is in service.
    assert report.attempts[-1].region == PRIMARY and report.attempts[-1].acknowledged
    assert regions.flag_of(target, PRIMARY).in_service is True
    assert picture.stat().st_size > 10_000
