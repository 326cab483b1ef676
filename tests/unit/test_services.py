"""How the container's services are built: once, lazily, and what the first build leaves behind."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from chalicelib import services


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

    assert frozen > 0
    assert gc.get_freeze_count() == frozen
    assert second is not first and services.get_services() is second
