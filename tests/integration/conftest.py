"""One local environment (both regions, as `make run` starts it) shared by the integration tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from localenv.environment import LocalEnvironment, RegionPlan
from localenv.network import free_port
from operations.targets import Target

PRIMARY, SECONDARY = "us-east-1", "us-east-2"
# Each region's canary probes the other this often (Lambda's schedule: every minute).
CANARY_SECONDS = 1.0
SETTLE_SECONDS = 30


def both_regions(log_dir: Path, **options: Any) -> LocalEnvironment:
    """The whole system on loopback (not started), both regions on free ports, output in ``log_dir``.

    Each region's canary probes the other every :data:`CANARY_SECONDS` unless ``options`` say otherwise.
    """
    return LocalEnvironment(
        [RegionPlan(PRIMARY, free_port()), RegionPlan(SECONDARY, free_port())],
        log_dir=log_dir,
        **{"canary_seconds": CANARY_SECONDS, **options},
    )


@pytest.fixture(scope="session")
def environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEnvironment]:
    """The whole system on loopback, on free ports, with each process's output in a file."""
    with both_regions(tmp_path_factory.mktemp("localenv")) as local:
        yield local


def eventually(check: Callable[[], Any], timeout: float = SETTLE_SECONDS) -> Any:
    """``check()``'s first truthy result, or its last result once ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def target_of(environment: LocalEnvironment) -> Target:
    """What ``payments-dr --local`` would act on for this environment."""
    return environment.target()
