"""The drill's verdict: what a merchant's caller saw decides it, as much as what the tables hold."""

from __future__ import annotations

from dataclasses import replace

import pytest

from drills.report import DrillReport


def report(**overrides: object) -> DrillReport:
    base = DrillReport(
        fault="api",
        sent=100,
        acknowledged=100,
        failed_attempts=4,
        rto_seconds=1.5,
        lost=[],
        rpo_seconds=0.0,
        duplicates=[],
        at_risk=[],
        at_risk_seconds=0.0,
        failover_at=11.5,
        failback_at=30.0,
        fault_at=10.0,
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def test_a_drill_whose_caller_saw_no_error_and_lost_nothing_passes() -> None:
    table = report().table()

    assert report().passed
    [errors] = [line for line in table.splitlines() if line.startswith("caller-visible errors")]
    assert errors.split()[-1] == "0"


@pytest.mark.parametrize(
    "broken",
    [
        {"caller_errors": ["drill-1"]},
        {"lost": ["drill-2"]},
        {"duplicates": ["drill-3"]},
        {"rto_seconds": None},
        {"consistency": "strong", "at_risk": ["drill-4"]},
    ],
)
def test_a_caller_visible_error_fails_the_drill_like_a_lost_or_doubled_payment(broken: dict) -> None:
    failed = report(**broken)

    assert not failed.passed
    assert failed.table().splitlines()[-1].endswith("FAIL")
