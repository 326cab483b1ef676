"""The drill with several merchants riding through a fault, in either topology.

Several riders pay at a steady rate through :mod:`payments_client`, each on its own thread:

- riders holding both regional endpoints, the home region first. In ``active-active`` half of
  them are at home in each region, so both regions carry warm traffic before the fault; in
  ``active-passive`` all of them are at home in the primary;
- riders holding one domain, whose every request goes where the drill's Route 53 model answers
  (a failover record in ``active-passive``, latency records in ``active-active``: the nearest
  region whose calculated check, ``/health`` and the peer's canary alarm, is healthy), cached for
  a scaled-down TTL as a resolver would.

The primary is faulted (``api``: its API stops and its 5XX alarm reaches its orchestrator;
``region``: replication out of it stops as well), comes back, and is failed back by the
operator's checked failback. The report gives each region's share before the fault, for each
kind of rider the longest gap between two of its payments (the RTO a merchant observes) with
its parts, caller errors, payments lost and doubled, and how the survivor served the share it
took over: the latency of its first requests for the moved riders against its own before.
"""

from __future__ import annotations

import itertools
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from chalicelib.failover_numbers import HEALTH_CHECK_FAILURE_THRESHOLD
from chalicelib.names import Topology
from drills.report import Attempt, audit
from drills.route53_model import Route53Model, publish_alarm
from drills.scenario import FAULTS, drill_client_policy, fail_back
from localenv.environment import LocalEnvironment
from localenv.progress import Heartbeat
from operations import regions
from operations.targets import Target
from payments_client import PaymentsClient, PaymentsUnavailable, RetryPolicy

# The faults this drill takes: the two that take a region out of the set.
RIDER_FAULTS = {name: FAULTS[name] for name in ("api", "region")}
BOTH_ENDPOINTS = "both endpoints"
ONE_DOMAIN = "one domain"
# The domain the domain riders hold; the drill's resolver answers it (nothing resolves it for real).
DRILL_DOMAIN = "pay.drill.invalid"
# A resolver keeps Route 53's answer this long (an alias record's 60 s, scaled down with the
# drill's other intervals).
DRILL_DNS_TTL_SECONDS = 1.0
# The survivor's first requests for the share it takes over: those answered within this long of
# the first one.
FIRST_REQUESTS_SECONDS = 3.0


@dataclass(frozen=True)
class RidersPlan:
    """How many riders, how fast, and how long each phase lasts."""

    topology: Topology = Topology.ACTIVE_ACTIVE
    fault: str = "api"
    riders_per_region: int = 2
    domain_riders_per_region: int = 1
    rate_per_rider: float = 4.0
    steady_seconds: float = 5.0
    outage_seconds: float = 10.0
    recovered_seconds: float = 5.0
    health_interval_seconds: float = 1.0
    canary_seconds: float = 1.0


class ResolvingSession:
    """An HTTP session for a client holding one domain: each request goes where DNS points now.

    The answer is kept for ``ttl`` seconds, as a resolver keeps it, and then asked again.
    """

    def __init__(self, router: Route53Model, nearest: str, urls: Mapping[str, str], ttl: float) -> None:
        self._router = router
        self._nearest = nearest
        self._urls = urls
        self._ttl = ttl
        self._session = requests.Session()
        self._answer = nearest
        self._answered_at = float("-inf")
        self.last_region = nearest

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        now = time.monotonic()
        if now - self._answered_at >= self._ttl:
            self._answer, self._answered_at = self._router.answer(self._nearest), now
        self.last_region = self._answer
        routed = self._urls[self._answer].rstrip("/") + url.removeprefix(f"https://{DRILL_DOMAIN}")
        return self._session.request(method, routed, **kwargs)


@dataclass
class Rider:
    """One merchant's code paying in a loop through its own client."""

    name: str
    kind: str
    home: str
    client: PaymentsClient
    session: ResolvingSession | None = None
    calls: list[Attempt] = field(default_factory=list)
    # Seconds each acknowledged call took, beside its answer time and region.
    latencies: list[tuple[float, str, float, int]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class KindFigures:
    """What riders of one kind saw, the worst of them."""

    riders: int
    longest_gap: float
    moved_after: float | None
    paying_again_after: float | None
    caller_errors: int


@dataclass
class RidersReport:
    """The drill's figures from the riders' side, and the audit of both tables."""

    topology: Topology
    fault: str
    consistency: str
    sent: int
    acknowledged: int
    shares_before: dict[str, float]
    kinds: dict[str, KindFigures]
    lost: list[str]
    duplicates: list[str]
    survivor: str
    survivor_latency_before: float | None
    survivor_latency_first: float | None
    fault_at: float
    failback_at: float | None
    attempts: list[Attempt] = field(repr=False, default_factory=list)

    @property
    def caller_errors(self) -> int:
        return sum(k.caller_errors for k in self.kinds.values())

    @property
    def passed(self) -> bool:
        """No payment lost or doubled, no error for a client holding both endpoints, shares split in active-active.

        A client holding one domain has nowhere to go until DNS moves it: its errors are reported,
        not failed on, as the checker of the edge of a failure counts them apart.
        """
        endpoint_errors = self.kinds[BOTH_ENDPOINTS].caller_errors if BOTH_ENDPOINTS in self.kinds else 0
        shares_split = self.topology is Topology.ACTIVE_PASSIVE or all(
            share >= 0.40 for share in self.shares_before.values()
        )
        return not self.lost and not self.duplicates and endpoint_errors == 0 and shares_split

    def table(self) -> str:
        def seconds(value: float | None) -> str:
            return f"{value:.1f} s" if value is not None else "-"

        rows = [
            ("fault", f"{self.fault}: {RIDER_FAULTS[self.fault]}"),
            ("topology / payments table", f"{self.topology} / {self.consistency}"),
            ("payments sent / acknowledged", f"{self.sent} / {self.acknowledged}"),
            (
                "share of payments before the fault",
                ", ".join(f"{region} {share:.0%}" for region, share in self.shares_before.items()),
            ),
        ]
        for kind, figures in self.kinds.items():
            rows += [
                (f"clients holding {kind} ({figures.riders})", ""),
                ("  longest gap between two payments (client-observed RTO)", seconds(figures.longest_gap)),
                (
                    "  fault -> moved (the client's move)"
                    if kind == BOTH_ENDPOINTS
                    else "  fault -> moved (Route 53's answer changed)",
                    seconds(figures.moved_after),
                ),
                ("  fault -> paying again in the survivor", seconds(figures.paying_again_after)),
                ("  caller-visible errors", str(figures.caller_errors)),
            ]
        ratio = (
            f"{self.survivor_latency_first / self.survivor_latency_before:.2f}"
            if self.survivor_latency_first and self.survivor_latency_before
            else "-"
        )
        rows += [
            (
                f"{self.survivor}'s first requests for the moved riders / its own before (median ms)",
                f"{ratio} ({_ms(self.survivor_latency_first)} / {_ms(self.survivor_latency_before)})",
            ),
            ("lost (acknowledged, missing in the survivor)", str(len(self.lost))),
            ("duplicate payments", str(len(self.duplicates))),
            ("verdict", "PASS" if self.passed else "FAIL"),
        ]
        width = max(len(label) for label, _ in rows)
        return "\n".join(f"{label:<{width}}  {value}".rstrip() for label, value in rows)


def _ms(value: float | None) -> str:
    return f"{value * 1000:.0f}" if value is not None else "-"


def _riders(target: Target, plan: RidersPlan, router: Route53Model, policy: RetryPolicy) -> list[Rider]:
    primary, secondary = target.primary_region, target.secondary_region
    urls = {region: target.api_url(region) for region in target.regions}
    homes = [primary, secondary] if plan.topology is Topology.ACTIVE_ACTIVE else [primary, primary]
    riders: list[Rider] = []
    for home in homes:
        away = secondary if home == primary else primary
        for _ in range(plan.riders_per_region):
            client = PaymentsClient(target.api_key or "", endpoints=[urls[home], urls[away]], policy=policy)
            riders.append(Rider(f"rider-{len(riders) + 1}", BOTH_ENDPOINTS, home, client))
        for _ in range(plan.domain_riders_per_region):
            session = ResolvingSession(router, home, urls, DRILL_DNS_TTL_SECONDS)
            client = PaymentsClient(target.api_key or "", domain=DRILL_DOMAIN, policy=policy, session=session)
            riders.append(Rider(f"rider-{len(riders) + 1}", ONE_DOMAIN, home, client, session))
    return riders


def run_riders_drill(environment: LocalEnvironment, target: Target, plan: RidersPlan) -> RidersReport:
    """Run the drill on a started local environment (its canary running both ways) and audit both tables."""
    if plan.fault not in RIDER_FAULTS:
        raise ValueError(f"the riders' drill takes the faults {', '.join(RIDER_FAULTS)}")
    primary, secondary = target.primary_region, target.secondary_region
    router = Route53Model(target, plan.health_interval_seconds, plan.topology)
    policy = drill_client_policy(plan.health_interval_seconds)
    riders = _riders(target, plan, router, policy)
    urls = {target.api_url(region): region for region in target.regions}
    tag = uuid.uuid4().hex[:6]
    acknowledged: dict[str, float] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def ride(rider: Rider) -> None:
        sequence = 0
        while not stop.is_set():
            sequence += 1
            transaction_id = f"drill-{tag}-{rider.name}-{sequence:05d}"
            body = {
                "transaction_id": transaction_id,
                "customer_id": rider.name,
                "amount": "10.00",
                "currency": "USD",
            }
            started = time.time()
            try:
                answer = rider.client.process(body)
            except PaymentsUnavailable:
                rider.errors.append(transaction_id)
                rider.calls.append(Attempt(time.time(), rider.home, transaction_id, False))
            else:
                answered = time.time()
                region = rider.session.last_region if rider.session else urls[answer.endpoint.rstrip("/")]
                ok = answer.status in (200, 201)
                rider.calls.append(Attempt(answered, region, transaction_id, ok))
                if ok:
                    rider.latencies.append((answered, region, answered - started, answer.attempts))
                    with lock:
                        acknowledged.setdefault(transaction_id, answered)
                else:
                    rider.errors.append(transaction_id)
            stop.wait(max(0.0, 1 / plan.rate_per_rider - (time.time() - started)))

    def wait(seconds: float) -> None:
        time.sleep(seconds)

    def wait_until(done: Callable[[], bool], limit: float) -> None:
        deadline = time.time() + limit
        while not done() and time.time() < deadline:
            time.sleep(0.5)

    phase = ["steady"]

    def progress() -> str:
        calls = sum(len(r.calls) for r in riders)
        errors = sum(len(r.errors) for r in riders)
        return f"{phase[0]}; {len(riders)} riders, {calls} payments, {len(acknowledged)} acknowledged, {errors} errors"

    threads = [threading.Thread(target=ride, args=(rider,), daemon=True) for rider in riders]
    failback_at: float | None = None
    router.start()
    try:
        with Heartbeat("drill", progress):
            wait_until(lambda: all(regions.canary_state(target, r)[0] == "OK" for r in target.regions), 30)
            for thread in threads:
                thread.start()
            wait(plan.steady_seconds)
            fault_at = time.time()
            phase[0] = f"fault: {primary}'s API stopped"
            environment.stop_api(primary)
            if plan.fault == "region":
                environment.pause_replication_from(primary)
            publish_alarm(environment, primary, target.names.api_5xx_alarm)
            wait(plan.outage_seconds)
            phase[0] = f"{primary} back, out of service until failback"
            environment.start_api(primary)
            if plan.fault == "region":
                environment.resume_replication_from(primary)
            wait(plan.recovered_seconds)
            phase[0] = f"failback of {primary} (waits for its canary to pass)"
            failback_at = fail_back(target, primary, wait)
            phase[0] = "failed back"
            wait(plan.recovered_seconds + HEALTH_CHECK_FAILURE_THRESHOLD * plan.health_interval_seconds)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        router.stop()
    attempts = sorted((call for rider in riders for call in rider.calls), key=lambda a: a.at)
    audited = audit(
        environment, target, attempts, acknowledged, fault_at, failback_at or time.time(), plan.fault
    )
    return RidersReport(
        topology=plan.topology,
        fault=plan.fault,
        consistency="strong" if environment.strong_consistency else "eventual",
        sent=audited.sent,
        acknowledged=len(acknowledged),
        shares_before=_shares(attempts, target.regions, fault_at),
        kinds=_kinds(riders, router, fault_at, primary, secondary),
        lost=audited.lost,
        duplicates=audited.duplicates,
        survivor=secondary,
        survivor_latency_before=_median(
            [
                s
                for rider in riders
                for at, region, s, n in rider.latencies
                if region == secondary and at < fault_at and n == 1
            ]
        ),
        survivor_latency_first=_first_requests(riders, primary, secondary, fault_at),
        fault_at=fault_at,
        failback_at=failback_at,
        attempts=attempts,
    )


def _shares(attempts: list[Attempt], regions_: tuple[str, ...], fault_at: float) -> dict[str, float]:
    before = [a for a in attempts if a.acknowledged and a.at < fault_at]
    return {region: sum(1 for a in before if a.region == region) / max(1, len(before)) for region in regions_}


def _kinds(
    riders: list[Rider], router: Route53Model, fault_at: float, primary: str, secondary: str
) -> dict[str, KindFigures]:
    kinds: dict[str, KindFigures] = {}
    for kind in (BOTH_ENDPOINTS, ONE_DOMAIN):
        mine = [r for r in riders if r.kind == kind]
        if not mine:
            continue
        gaps, moved, again = [], [], []
        for rider in mine:
            paid = sorted(a.at for a in rider.calls if a.acknowledged)
            gaps.append(max((b - a for a, b in itertools.pairwise(paid)), default=0.0))
            if rider.home != primary:
                continue
            if kind == BOTH_ENDPOINTS:
                wall = time.time() - time.monotonic()
                move = next((m.at + wall for m in rider.client.moves if m.at + wall >= fault_at), None)
            else:
                move = router.unhealthy_at.get(primary)
            if move is not None:
                moved.append(move - fault_at)
            first = next(
                (a.at for a in rider.calls if a.acknowledged and a.region == secondary and a.at >= fault_at),
                None,
            )
            if first is not None:
                again.append(first - fault_at)
        kinds[kind] = KindFigures(
            riders=len(mine),
            longest_gap=max(gaps),
            moved_after=max(moved) if moved else None,
            paying_again_after=max(again) if again else None,
            caller_errors=sum(len(r.errors) for r in mine),
        )
    return kinds


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _first_requests(riders: list[Rider], primary: str, survivor: str, fault_at: float) -> float | None:
    """The median latency of the survivor's first answers to riders at home in the faulted region."""
    answered = sorted(
        (at, seconds)
        for rider in riders
        if rider.home == primary
        for at, region, seconds, attempts in rider.latencies
        if region == survivor and at >= fault_at and attempts == 1
    )
    if not answered:
        return None
    first = answered[0][0]
    return _median([seconds for at, seconds in answered if at - first <= FIRST_REQUESTS_SECONDS])
