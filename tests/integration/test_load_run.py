"""The load run in short form: concurrent clients, duplicates and invalid payments, then an audit.

``make load`` runs the full 10,000 payments from 20 clients; this runs the same code on the
shared local environment with fewer payments, so every ``make test`` checks the invariants.
"""

from __future__ import annotations

import pytest

from bench.load_run import run
from localenv.environment import LocalEnvironment
from tests.integration.conftest import PRIMARY

pytestmark = pytest.mark.integration


def test_every_valid_payment_is_stored_once_in_both_regions_and_no_5xx(environment: LocalEnvironment) -> None:
    audit = run(environment, payments=300, clients=20, region=PRIMARY)
    print(audit.report())

    assert audit.server_errors == 0
    assert audit.statuses.get(422) == 30  # every invalid payment rejected
    assert set(audit.stored.values()) == {audit.valid}
    assert set(audit.doubled.values()) == {0}
    assert set(audit.invalid_stored.values()) == {0}
    assert audit.passed
