"""The fault-schedule checker, short: random schedules keep every promise, and each planted twin of a
problem the edge-of-failure fixes removed is caught (``make chaos`` runs the long version)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import pytest

from chaos.__main__ import local_aws, quiet, run_many, world_of
from chaos.properties import Findings
from chaos.run import run_schedule
from chaos.schedule import (
    NotifierOutage,
    RegionFault,
    RequestFault,
    Schedule,
    StruckRegion,
    StruckRequest,
    draw,
    dumps,
)
from chaos.twins import TWINS
from chaos.world import World

MERCHANTS = 3
PAYMENTS = 6


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("chaos") / "chaos.log"
    with local_aws() as url, quiet(log):
        yield url


@pytest.fixture(scope="module")
def world(endpoint: str) -> Iterator[World]:
    with world_of(endpoint, strong=False, merchants=MERCHANTS) as built:
        yield built


def every_fault(schedules: list[Schedule]) -> set[str]:
    drawn = {struck.fault.value for s in schedules for struck in s.requests}
    drawn |= {s.region.fault.value for s in schedules if s.region}
    return drawn | ({"notifier"} if any(s.notifier for s in schedules) else set())


def total(results: list[Findings]) -> dict[str, float]:
    names = ("caller_errors", "missing", "doubled", "unannounced", "several_ids", "unjustified_moves")
    sums: dict[str, float] = {name: sum(getattr(f, name) for f in results) for name in names}
    sums["blocked_seconds"] = max(f.blocked_seconds for f in results)
    sums["acknowledged"] = sum(f.acknowledged for f in results)
    sums["excused"] = sum(f.excused_errors for f in results)
    return sums


def test_random_schedules_keep_every_promise(world: World) -> None:
    schedules = [
        draw(seed, merchants=MERCHANTS, payments_each=PAYMENTS, fault_rate=0.4, region_fault_chance=0.9)
        for seed in range(101, 107)
    ]

    results = [run_schedule(world, schedule) for schedule in schedules]

    assert every_fault(schedules) == {f.value for f in RequestFault} | {f.value for f in RegionFault} | {
        "notifier"
    }
    assert [f.violations for f in results if not f.ok] == []
    # Every payment acknowledged, but for a call whose only region (a domain's) was down throughout.
    assert total(results)["acknowledged"] + total(results)["excused"] == len(schedules) * MERCHANTS * PAYMENTS
    assert total(results)["blocked_seconds"] == 0.0
    assert sum(f.struck for f in results) > len(schedules) * 5  # the faults did strike


def test_a_region_lost_for_good_under_strong_consistency_keeps_every_promise(
    endpoint: str, world: World
) -> None:
    # One world at a time: this one is built after the module's has had its turn.
    schedules = [
        dataclasses.replace(
            draw(seed, merchants=MERCHANTS, payments_each=PAYMENTS, fault_rate=0.3),
            region=StruckRegion(seed % 2, RegionFault.LOST, 0.2),
        )
        for seed in (201, 202)
    ]
    world.stop()
    try:
        results = [found for _, found in run_many(schedules, strong=True, endpoint=endpoint)]
    finally:
        world.start(MERCHANTS)

    assert [f.violations for f in results if not f.ok] == []


def struck(fault: RequestFault, attempts: int = 2, every: int = 3) -> tuple[StruckRequest, ...]:
    return tuple(StruckRequest(index, fault, attempts) for index in range(0, MERCHANTS * PAYMENTS, every))


TWIN_SCHEDULES: dict[str, tuple[Schedule, str]] = {
    # A function killed after its claim leaves the marker behind: its retry is refused.
    "in-flight-marker": (
        Schedule(301, MERCHANTS, PAYMENTS, struck(RequestFault.KILLED_AFTER_CLAIM, 1), homes=(0, 1, -1)),
        "caller_errors",
    ),
    # Two 503s after a stored claim: the client goes elsewhere from a healthy region.
    "every-5xx-says-nothing-stored": (
        Schedule(302, MERCHANTS, PAYMENTS, struck(RequestFault.FAILS_AFTER_WRITE, 2), homes=(0, 1, -1)),
        "unjustified_moves",
    ),
    # The domain's region drains: the one-endpoint client spends its attempts before DNS moves.
    "drain-without-backoff": (
        Schedule(
            303, MERCHANTS, PAYMENTS, (), StruckRegion(0, RegionFault.DRAINED, 0.05), homes=(-1, -1, -1)
        ),
        "caller_errors",
    ),
    # Throttled twice, then a body cut short.
    "throttle-moves-and-bodies-escape": (
        Schedule(
            304,
            MERCHANTS,
            PAYMENTS,
            struck(RequestFault.THROTTLED, 2, every=4)
            + (StruckRequest(2, RequestFault.ANSWER_CUT_SHORT, 1),),
            homes=(0, 1, -1),
        ),
        "caller_errors",
    ),
    # A notifier that fails half its publications retries them; reannounce publishes all again.
    "event-id-per-publication": (
        Schedule(305, MERCHANTS, PAYMENTS, (), None, NotifierOutage(0, 0.0, 5.0, 0.5), homes=(0, 1, -1)),
        "several_ids",
    ),
}


@pytest.mark.parametrize("twin", sorted(TWINS))
def test_each_planted_problem_is_caught(world: World, twin: str) -> None:
    schedule, broken = TWIN_SCHEDULES[twin]

    with TWINS[twin](world):
        planted = run_schedule(world, schedule)
        seen = [(round(a.at, 2), a.region, a.status) for a in world.history.attempts][:20]
    fixed = run_schedule(world, dataclasses.replace(schedule, seed=schedule.seed + 1000))

    assert getattr(planted, broken) > 0, (planted.violations, seen)
    assert fixed.ok, fixed.violations


def test_a_schedule_replays_from_what_was_recorded() -> None:
    schedule = draw(7, merchants=4, payments_each=9, fault_rate=0.5, region_fault_chance=1.0)

    assert Schedule.from_json(json.loads(dumps(schedule))) == schedule
