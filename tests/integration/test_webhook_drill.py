"""The webhook drill in short form: a receiver down for an hour and a region lost, in compressed time."""

from __future__ import annotations

from pathlib import Path

import pytest

from drills.webhooks import WebhookDrillPlan, run_webhook_drill
from tests.integration.conftest import both_regions

pytestmark = pytest.mark.integration


def test_every_event_is_delivered_in_the_end_verified_and_repeats_keep_their_webhook_id(
    tmp_path: Path,
) -> None:
    plan = WebhookDrillPlan(payments=8)
    with both_regions(tmp_path, canary_seconds=0.0, webhook_time_scale=plan.scale) as environment:
        report = run_webhook_drill(environment, environment.target(), plan)
    print(report.table())

    assert report.delivered_share == 1.0
    assert report.unverified == 0 and report.caller_errors == 0
    # The receiver refused the first hour: the survivor's event needed retries, on the schedule.
    assert len(report.attempts_of_first) >= 2
    assert report.attempts_of_first == sorted(report.attempts_of_first)
    assert report.passed
