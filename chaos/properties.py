"""What a merchant is promised, checked over one schedule's whole history."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import urlsplit

from chaos.schedule import RegionFault
from chaos.world import DNS_MOVE_SECONDS, World, announced

# A move made this soon after a region's fault struck is still that fault's (clocks of two threads).
CLOCK_SLACK_SECONDS = 0.01


@dataclass(frozen=True)
class CallerError:
    """A call that ended in an error for its caller: who, holding what, from when to when."""

    merchant: str
    home: int  # the preferred region, or -1 for one domain
    started: float
    ended: float
    text: str


@dataclass
class Ledger:
    """What the merchants saw: payments acknowledged, errors, and their clients' moves."""

    acknowledged: list[tuple[str, str, Decimal]] = field(default_factory=list)
    errors: list[CallerError] = field(default_factory=list)
    # (merchant, seconds into the history, region left, why)
    moves: list[tuple[str, float, int, str]] = field(default_factory=list)
    payments: int = 0


@dataclass
class Findings:
    """Every broken promise of one history, and its figures."""

    violations: list[str] = field(default_factory=list)
    acknowledged: int = 0
    payments: int = 0
    caller_errors: int = 0
    # Errors of a call whose one reachable region was down while it retried: a domain's region
    # lost during the call, before Route 53 moved the domain (counted apart, never a violation).
    excused_errors: int = 0
    missing: int = 0
    doubled: int = 0
    unannounced: int = 0
    several_ids: int = 0
    unjustified_moves: int = 0
    blocked_seconds: float = 0.0
    struck: int = 0

    @property
    def ok(self) -> bool:
        return not self.violations


def region_of(endpoint: str) -> int | None:
    host = urlsplit(endpoint).hostname or ""
    return int(host.removeprefix("region-").split(".")[0]) if host.startswith("region-") else None


def check(world: World, ledger: Ledger) -> Findings:
    """The promises, over the history ``world`` holds and what ``ledger`` saw."""
    found = Findings(
        acknowledged=len(ledger.acknowledged), payments=ledger.payments, struck=world.history.struck
    )
    stored = [world.claims(region) for region in (0, 1)]
    listed = [Counter(world.records(region)) for region in (0, 1)]
    for client, transaction, amount in ledger.acknowledged:
        for region in (0, 1):
            claim = stored[region].get((client, transaction))
            if claim is None or claim.amount != amount:
                found.missing += 1
                found.violations.append(f"acknowledged {client}/{transaction} missing in region {region}")
    for region in (0, 1):
        for (client, transaction), copies in listed[region].items():
            if copies > 1:
                found.doubled += 1
                found.violations.append(f"{client}/{transaction} stored {copies} times in region {region}")
    schedule = world.schedule
    for error in ledger.errors:
        if whole_budget_outage(world, error):
            found.excused_errors += 1
            continue
        found.caller_errors += 1
        found.violations.append(f"caller error: {error.text}")
    for merchant, at, region, why in ledger.moves:
        struck = schedule.region if schedule else None
        if struck is None or struck.region != region or at + CLOCK_SLACK_SECONDS < struck.after:
            found.unjustified_moves += 1
            found.violations.append(f"{merchant} left healthy region {region} at {at:.3f} s: {why}")
    ids = announced(world)
    for client, transaction in set(stored[0]) | set(stored[1]):
        seen = ids.get((client, transaction), set())
        if not seen:
            found.unannounced += 1
            found.violations.append(f"{client}/{transaction} stored and never announced")
        elif len(seen) > 1:
            found.several_ids += 1
            found.violations.append(f"{client}/{transaction} announced under {len(seen)} event ids")
    found.blocked_seconds = blocked_by_markers(world)
    return found


def whole_budget_outage(world: World, error: CallerError) -> bool:
    """Whether the one region ``error``'s caller could reach (a domain's) was lost during the call,
    before DNS moved it: an outage that took the call's budget, which no client rule can avoid."""
    struck = world.schedule.region if world.schedule else None
    if error.home >= 0 or struck is None or struck.fault is not RegionFault.LOST or struck.region != 0:
        return False
    # Its one region was down for part of the call, before DNS moved it: the attempts the outage
    # took were its budget's (the rest may have met a fault of their own, a throttle, a cut body).
    return (
        error.started <= struck.after + DNS_MOVE_SECONDS and error.ended + CLOCK_SLACK_SECONDS >= struck.after
    )


def blocked_by_markers(world: World) -> float:
    """The longest any payment's retries were answered "in progress" (409) before an answer came."""
    first_409: dict[str, float] = {}
    longest = 0.0
    for attempt in world.history.attempts:
        if attempt.key is None:
            continue
        if attempt.status == 409:
            first_409.setdefault(attempt.key, attempt.at)
        elif isinstance(attempt.status, int) and 200 <= attempt.status < 300 and attempt.key in first_409:
            longest = max(longest, attempt.at - first_409.pop(attempt.key))
    end = world.elapsed()
    for began in first_409.values():  # still blocked when the history ended
        longest = max(longest, end - began)
    return longest
