"""The load run in short form: concurrent clients, duplicates and invalid payments, then an audit.

``make load`` runs the full 10,000 payments from 20 clients; this runs the same code on the
shared local environment with fewer payments, so every ``make test`` checks the invariants, and
kills the local AWS in the middle of a run of its own to show the run still ends in an audit.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from bench.load_run import LoadRun, run
from localenv.environment import LocalEnvironment, RegionPlan
from localenv.network import free_port
from payments_client import RetryPolicy
from tests.integration.conftest import PRIMARY, SECONDARY

pytestmark = pytest.mark.integration


def test_every_valid_payment_is_stored_once_in_both_regions_and_no_5xx(environment: LocalEnvironment) -> None:
    audit = run(environment, payments=300, clients=20, region=PRIMARY)
    print(audit.report())

    assert audit.server_errors == 0 and audit.caller_errors == 0
    assert audit.statuses.get(422) == 30  # every invalid payment rejected
    assert set(audit.stored.values()) == {audit.valid}
    assert set(audit.doubled.values()) == {0}
    assert set(audit.invalid_stored.values()) == {0}
    assert all(region.queued == 0 and region.dead_lettered == 0 for region in audit.regions.values())
    assert audit.broken_promises() == []


def test_a_run_whose_local_aws_dies_ends_with_an_audit_naming_what_was_lost_or_pending(
    tmp_path: Path,
) -> None:
    plans = [RegionPlan(PRIMARY, free_port()), RegionPlan(SECONDARY, free_port())]
    with LocalEnvironment(plans, log_dir=tmp_path) as environment:

        def kill_once_payments_flow(load: LoadRun) -> None:
            def watch() -> None:
                while len(load.outcome.acknowledged) < 20:
                    threading.Event().wait(0.05)
                environment.stop_local_aws()

            threading.Thread(target=watch, daemon=True).start()

        # Two quick attempts a call: with its AWS gone, every call fails, and the run must end soon.
        audit = run(
            environment,
            payments=400,
            clients=10,
            region=PRIMARY,
            rate=80,
            on_started=kill_once_payments_flow,
            policy=RetryPolicy(max_attempts=2, base_delay=0.05, max_delay=0.1, timeout=10),
        )

    report = audit.report()
    print(report)
    broken = " ".join(audit.broken_promises())
    assert audit.acknowledged >= 20
    # The API answered 503 once its AWS was gone, in both regions: the client's retries ran out.
    assert "calls failed for the caller" in broken
    assert "could not be read" in broken and "unchecked" in broken
    assert report.splitlines()[-1].startswith("verdict") and "FAIL" in report.splitlines()[-1]
