"""A fault schedule: what strikes, when, and in which request; drawn from a seed, replayable from JSON."""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class RequestFault(StrEnum):
    """A fault that strikes one attempt of one request, at a point inside it."""

    # The function dies after the claim is stored, before the record (API Gateway answers 502).
    KILLED_AFTER_CLAIM = "killed-after-claim"
    # The function dies after its last write, before it answers (502).
    KILLED_AFTER_WRITE = "killed-after-write"
    # The table does not answer the claim within the SDK's timeouts: nothing is written (503).
    HANGS_PAST_TIMEOUT = "hangs-past-timeout"
    # The claim is written but its answer times out: a 503 after the write.
    FAILS_AFTER_WRITE = "fails-after-write"
    # The answer is lost on the wire: the connection drops after the work is done.
    ANSWER_LOST = "answer-lost"
    # The body is cut short on the wire (requests' ChunkedEncodingError).
    ANSWER_CUT_SHORT = "answer-cut-short"
    # The merchant's own usage-plan throttle (API Gateway's 429; the function never runs).
    THROTTLED = "throttled"


class RegionFault(StrEnum):
    """A fault of a whole region, from a moment on, for the rest of the schedule."""

    LOST = "lost"  # its API and notifier gone for good; its table's data already replicated
    DRAINED = "drained"  # an operator's switchover takes it out of service


@dataclass(frozen=True)
class StruckRequest:
    """Attempt ``attempts`` times in a row, from the ``index``-th request of the whole history."""

    index: int
    fault: RequestFault
    attempts: int = 1


@dataclass(frozen=True)
class StruckRegion:
    """``fault`` strikes ``region`` (0 the primary, 1 the secondary) ``after`` seconds into the history."""

    region: int
    fault: RegionFault
    after: float


@dataclass(frozen=True)
class NotifierOutage:
    """A region's notifier fails to publish ``rate`` of its announcements between two moments."""

    region: int
    start: float
    end: float
    rate: float


@dataclass(frozen=True)
class Schedule:
    """One history: its merchants and payments, and every fault drawn for it."""

    seed: int
    merchants: int
    payments_each: int
    requests: tuple[StruckRequest, ...] = ()
    region: StruckRegion | None = None
    notifier: NotifierOutage | None = None
    # Each merchant's client: its preferred region (0 or 1), or -1 for one domain (Route 53's record).
    homes: tuple[int, ...] = field(default_factory=tuple)

    def faults_of(self, index: int) -> StruckRequest | None:
        """The fault striking the ``index``-th request, if any."""
        for struck in self.requests:
            if struck.index == index:
                return struck
        return None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Schedule:
        """The schedule written by :meth:`to_json`: a failure found once can be run again."""
        region = data.get("region")
        notifier = data.get("notifier")
        return cls(
            seed=data["seed"],
            merchants=data["merchants"],
            payments_each=data["payments_each"],
            requests=tuple(
                StruckRequest(r["index"], RequestFault(r["fault"]), r["attempts"]) for r in data["requests"]
            ),
            region=None
            if region is None
            else StruckRegion(region["region"], RegionFault(region["fault"]), region["after"]),
            notifier=None if notifier is None else NotifierOutage(**notifier),
            homes=tuple(data["homes"]),
        )


def draw(
    seed: int,
    *,
    merchants: int = 3,
    payments_each: int = 10,
    fault_rate: float = 0.3,
    region_faults: tuple[RegionFault, ...] = tuple(RegionFault),
    region_fault_chance: float = 0.5,
) -> Schedule:
    """A random schedule from ``seed``: about ``fault_rate`` of the requests struck, at most one
    region fault, sometimes a notifier outage; one merchant in three holds a domain."""
    rng = random.Random(seed)
    total = merchants * payments_each
    struck = tuple(
        StruckRequest(index, rng.choice(list(RequestFault)), rng.choice((1, 1, 2, 3)))
        for index in range(total)
        if rng.random() < fault_rate
    )
    region = None
    if region_faults and rng.random() < region_fault_chance:
        region = StruckRegion(rng.choice((0, 1)), rng.choice(region_faults), round(rng.uniform(0.05, 0.6), 3))
    notifier = None
    if rng.random() < 0.4:
        start = round(rng.uniform(0.0, 0.5), 3)
        notifier = NotifierOutage(rng.choice((0, 1)), start, round(start + rng.uniform(0.2, 1.0), 3), 0.5)
    homes = tuple(-1 if n % 3 == 2 else n % 2 for n in range(merchants))
    return Schedule(seed, merchants, payments_each, struck, region, notifier, homes)


def dumps(schedule: Schedule) -> str:
    """The schedule as one line of JSON."""
    return json.dumps(schedule.to_json(), separators=(",", ":"))
