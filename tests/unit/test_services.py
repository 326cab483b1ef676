"""What a cold start leaves behind: services built once, and a collector that runs afterwards."""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from chalicelib import heap, services

RUNTIME = Path(__file__).resolve().parents[2] / "runtime"


@pytest.fixture
def fresh_container(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setattr(services, "_services", None)
    monkeypatch.setattr(services, "_heap_frozen", False)
    gc.unfreeze()
    yield
    gc.unfreeze()  # the rest of the test run keeps a normal collector


def test_the_first_build_freezes_the_heap_and_later_builds_do_not(fresh_container: None) -> None:
    first = services.get_services()
    frozen = gc.get_freeze_count()
    services.use_services(None)

    second = services.get_services()

    assert frozen > 0 and gc.isenabled()
    assert gc.get_freeze_count() <= frozen  # frozen objects may still be freed; none were added
    assert second is not first and services.get_services() is second


def test_building_long_lived_objects_leaves_a_disabled_collector_disabled() -> None:
    gc.disable()
    try:
        with heap.building_long_lived():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
        gc.unfreeze()


def test_importing_the_handler_module_freezes_it_and_leaves_the_collector_running() -> None:
    probe = "import gc; import app; print(gc.isenabled(), gc.get_freeze_count() > 1000)"

    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=RUNTIME,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "", "AWS_REGION": "us-east-1"},
    )

    assert result.stdout.split() == ["True", "True"]
