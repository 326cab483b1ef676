"""The DR drill: steady payments, a primary-region fault, failover, a checked failback, a report.

A merchant's code sends payments to ``POST /process`` at a steady rate through the client we ship
(:mod:`payments_client`), with one key and both regional endpoints and no domain, as the stacks
deploy by default: the client retries with the same Idempotency-Key and moves to the secondary
when the primary stops answering, drains, or its ``/health`` says it is out of service. The drill
measures what that caller gets: errors it saw after the client's retries (goal 0), payments it was
told succeeded and are missing, duplicates, and when its payments succeed in the survivor.

Beside it, a model of Route 53's failover record shows when DNS would have moved a client with a
domain: its calculated check needs both children healthy, as the stacks configure it, the
endpoint check on the primary's ``/health`` (unhealthy after 3 consecutive failures, polled at a
fixed interval) and the alarm on the canary that the *secondary* runs against the primary (a
real payment and its read every ``canary_seconds``; Lambda's schedule runs it every minute).

Faults (``--fault``):

- ``api``: the primary's API stops and its 5XX alarm reaches its own orchestrator, which takes
  it out of service;
- ``region``: as ``api``, and replication out of the primary stops too (the region is lost);
- ``gray``: the primary's data plane is denied (its functions cannot write) while its
  ``/health`` still answers 200, and its orchestrator is off: only the observer sees it;
- ``replication-paused``: replication out of the primary pauses while an operator runs a
  planned switchover, which must not declare the secondary caught up before it is.

Then the primary recovers and the operator's failback (``payments-dr failback``, which also
waits for the canary against the primary to pass) returns it to service. From what the client
and the router observed the drill reports the RTO in three parts, detect (fault to the first
failed probe or check), decide (to the client's move to the secondary) and execute (to the first
payment the secondary accepts); RPO as payments acknowledged but missing in the survivor;
duplicates; and the calls that failed for the caller.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from chalicelib.canary import canary_dimensions
from chalicelib.failover_numbers import HEALTH_CHECK_FAILURE_THRESHOLD
from chalicelib.names import METRICS_NAMESPACE, Metric
from localenv.canary import alarm_notification
from localenv.environment import LocalEnvironment
from localenv.interface import FAULTS
from localenv.progress import Heartbeat
from operations import regions
from operations.targets import Target
from payments_client import PaymentsClient, PaymentsUnavailable, RetryPolicy

# A drill's failback waits this long for the canary against the primary to pass (AWS: 10 min).
DRILL_CANARY_PASSED_SECONDS = 3.0
# The client leaves the preferred region for at least this long (its default: 5 min), scaled down
# with the drill's other intervals.
DRILL_RETURN_AFTER_SECONDS = 5.0


@dataclass(frozen=True)
class DrillPlan:
    """How long each phase lasts and how hard the client pushes."""

    rate_per_second: float = 10.0
    steady_seconds: float = 5.0
    outage_seconds: float = 10.0
    recovered_seconds: float = 5.0
    health_interval_seconds: float = 1.0
    canary_seconds: float = 1.0
    fault: str = "api"


@dataclass
class Attempt:
    """One call the merchant's code made (with the client's retries inside), placed at its answer."""

    at: float
    region: str
    transaction_id: str
    acknowledged: bool


@dataclass
class DrillReport:
    """What the drill measured."""

    fault: str
    sent: int
    acknowledged: int
    failed_attempts: int
    rto_seconds: float | None
    lost: list[str]
    rpo_seconds: float
    duplicates: list[str]
    # --fault region: acknowledged by the primary but not in the secondary when the primary
    # came back, i.e. what a region that never returns would have taken with it.
    at_risk: list[str]
    at_risk_seconds: float
    failover_at: float | None
    failback_at: float | None
    fault_at: float
    # Calls that failed for the caller after the client's retries (their transaction ids).
    caller_errors: list[str] = field(default_factory=list)
    client_move_reason: str = ""
    # When a Route 53 failover record would have sent clients with a domain to the secondary.
    route53_decided_at: float | None = None
    detect_at: float | None = None
    decide_at: float | None = None
    detected_by: str = ""
    # --fault gray: whether the primary's own orchestrator stayed out of it (it was off): its flag
    # is untouched, or was changed by the observer on the canary alarm, never on its own alarms.
    primary_orchestrator_idle: bool | None = None
    # --fault replication-paused: when replication resumed and when the switchover declared the
    # secondary caught up (never before it resumed).
    resumed_at: float | None = None
    caught_up_at: float | None = None
    switchover: str = ""
    # The payments table's mode: under strong consistency a write is in both regions before it is
    # acknowledged, so nothing may be at risk even had the primary never come back (RPO 0).
    consistency: str = "eventual"
    attempts: list[Attempt] = field(repr=False, default_factory=list)

    @property
    def passed(self) -> bool:
        checks = [not self.lost, not self.duplicates, not self.caller_errors, self.rto_seconds is not None]
        if self.consistency == "strong":
            checks.append(not self.at_risk)
        if self.fault == "gray":
            checks.append(self.primary_orchestrator_idle is True)
        if self.fault == "replication-paused":
            checks.append(
                self.resumed_at is not None
                and self.caught_up_at is not None
                and self.caught_up_at >= self.resumed_at
            )
        return all(checks)

    def _part(self, start: float | None, end: float | None) -> str:
        return f"{end - start:.1f} s" if start is not None and end is not None else "-"

    def table(self) -> str:
        rows = [
            ("fault", f"{self.fault}: {FAULTS[self.fault]}"),
            ("payments table consistency", self.consistency),
            ("payments sent / acknowledged", f"{self.sent} / {self.acknowledged}"),
            ("caller-visible errors, after the client's retries", str(len(self.caller_errors))),
            ("failed attempts (retried by the client)", str(self.failed_attempts)),
            (
                "RTO: fault -> first payment accepted by the secondary",
                f"{self.rto_seconds:.1f} s" if self.rto_seconds is not None else "never",
            ),
            (
                f"  detect: fault -> {self.detected_by or 'first failed signal'}",
                self._part(self.fault_at, self.detect_at),
            ),
            (
                f"  decide: -> the client moves to the secondary ({self.client_move_reason or 'never'})",
                self._part(self.detect_at, self.decide_at),
            ),
            (
                "  execute: -> first payment accepted by the secondary",
                self._part(self.decide_at, self.failover_at),
            ),
            (
                "with a domain: fault -> Route 53's record would move clients",
                self._part(self.fault_at, self.route53_decided_at),
            ),
            (
                "RPO: acknowledged but missing in the surviving region",
                f"{len(self.lost)} payments, {self.rpo_seconds:.1f} s",
            ),
            (
                "  had the primary never come back",
                f"{len(self.at_risk)} payments, {self.at_risk_seconds:.1f} s",
            ),
            ("duplicate payments", str(len(self.duplicates))),
        ]
        if self.fault == "gray":
            rows.append(
                (
                    "primary's own orchestrator took no part",
                    "yes" if self.primary_orchestrator_idle else "NO",
                )
            )
        if self.fault == "replication-paused":
            rows.append(("switchover", self.switchover or "did not complete"))
            rows.append(
                (
                    "caught up declared only after replication resumed",
                    "yes" if self.passed or (self.caught_up_at or 0) >= (self.resumed_at or 0) else "NO",
                )
            )
        rows.append(("verdict", "PASS" if self.passed else "FAIL"))
        width = max(len(label) for label, _ in rows)
        return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)


class Route53LikeRouter:
    """The failover record: primary while its calculated health check is healthy, else secondary.

    The calculated check is healthy only while both children are: the endpoint check on
    ``/health`` (3 consecutive results change its state) and the alarm on the peer's canary.
    """

    def __init__(self, target: Target, interval: float, canary_alarm: Callable[[], str]) -> None:
        self._target = target
        self._interval = interval
        self._canary_alarm = canary_alarm
        self.endpoint_healthy = True
        self.alarm_state = "OK"
        self.primary_healthy = True
        self.first_failed_check_at: float | None = None
        self.decided_at: float | None = None
        self.decided_by = ""
        self._streak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            code, _ = regions.health_of(self._target, self._target.primary_region)
            passing = code == 200
            if not passing and self.first_failed_check_at is None:
                self.first_failed_check_at = time.time()
            if passing == self.endpoint_healthy:
                self._streak = 0
            else:
                self._streak += 1
                if self._streak >= HEALTH_CHECK_FAILURE_THRESHOLD:
                    self.endpoint_healthy, self._streak = passing, 0
            self.alarm_state = self._canary_alarm()
            healthy = self.endpoint_healthy and self.alarm_state != "ALARM"
            if self.primary_healthy and not healthy and self.decided_at is None:
                self.decided_at = time.time()
                self.decided_by = "the canary alarm" if self.alarm_state == "ALARM" else "the /health check"
            self.primary_healthy = healthy

    def region(self) -> str:
        return self._target.primary_region if self.primary_healthy else self._target.secondary_region


def publish_alarm(environment: LocalEnvironment, region: str, alarm_name: str) -> None:
    """What CloudWatch sends to the ops-alert topic when an alarm enters ALARM."""
    message = alarm_notification(
        alarm_name, region, "ALARM", old_state="OK", reason="drill: the API stopped answering"
    )
    environment.client("sns", region).publish(
        TopicArn=environment.resources[region].ops_alert_topic_arn, Message=message
    )


def first_failed_canary(environment: LocalEnvironment, target: Target, since: float) -> float | None:
    """When the secondary's canary first failed against the primary after ``since`` (its metric)."""
    points = environment.client("cloudwatch", target.secondary_region).get_metric_statistics(
        Namespace=METRICS_NAMESPACE,
        MetricName=Metric.CANARY_SUCCESS,
        Dimensions=canary_dimensions(target.primary_region),
        StartTime=datetime.fromtimestamp(since - 1, UTC),
        EndTime=datetime.now(UTC),
        Period=1,
        Statistics=["Minimum"],
    )["Datapoints"]
    failed = [
        p["Timestamp"].timestamp()
        for p in points
        if p["Minimum"] < 1 and p["Timestamp"].timestamp() >= since - 1
    ]
    return min(failed) if failed else None


def run_drill(environment: LocalEnvironment, target: Target, plan: DrillPlan) -> DrillReport:
    """Run the drill on a started local environment (with its canary running) and audit both tables."""
    primary, secondary = target.primary_region, target.secondary_region
    # Route 53 reads the secondary's alarm on the canary against the primary, as failback does.
    router = Route53LikeRouter(
        target, plan.health_interval_seconds, lambda: regions.canary_state(target, primary)[0]
    )
    endpoints = {target.api_url(region): region for region in target.regions}
    client = PaymentsClient(
        target.api_key or "",
        endpoints=list(endpoints),
        policy=RetryPolicy(
            timeout=2.0,
            base_delay=0.1,
            max_delay=1.0,
            health_interval=plan.health_interval_seconds,
            return_after=DRILL_RETURN_AFTER_SECONDS,
        ),
    )
    # The client's clock is monotonic: its moves are put on the wall clock with this offset.
    wall = time.time() - time.monotonic()
    attempts: list[Attempt] = []
    acknowledged: dict[str, float] = {}
    caller_errors: list[str] = []
    retried = 0
    tag = uuid.uuid4().hex[:6]
    sequence = 0

    def send_one() -> None:
        nonlocal sequence, retried
        sequence += 1
        body = {
            "transaction_id": f"drill-{tag}-{sequence:05d}",
            "customer_id": "drill",
            "amount": "10.00",
            "currency": "USD",
        }
        try:
            answer = client.process(body)
        except PaymentsUnavailable as error:
            retried += error.attempts
            caller_errors.append(body["transaction_id"])
            attempts.append(Attempt(time.time(), endpoints[client.endpoint], body["transaction_id"], False))
            return
        # Each call is placed at its answer: when the caller learned the payment's fate.
        answered = time.time()
        retried += answer.attempts - 1
        ok = answer.status in (200, 201)
        attempts.append(Attempt(answered, endpoints[answer.endpoint], body["transaction_id"], ok))
        if ok:
            acknowledged.setdefault(body["transaction_id"], answered)
        else:
            caller_errors.append(body["transaction_id"])

    def send_for(seconds: float) -> None:
        deadline = time.time() + seconds
        while time.time() < deadline:
            started = time.time()
            send_one()
            time.sleep(max(0.0, 1 / plan.rate_per_second - (time.time() - started)))

    def send_until(done: Callable[[], bool], limit: float) -> None:
        deadline = time.time() + limit
        while not done() and time.time() < deadline:
            send_for(0.5)

    phase = ["steady"]

    def progress() -> str:
        return (
            f"{phase[0]}; {len(attempts)} payments, {len(acknowledged)} acknowledged, "
            f"{len(caller_errors)} caller errors, the client on {endpoints[client.endpoint]}, "
            f"canary alarm on {primary}: {router.alarm_state}"
        )

    at_risk: list[str] = []
    primary_flag: bool | None = None
    resumed_at: float | None = None
    caught_up_at: float | None = None
    switchover_summary = ""
    switchover_started: float | None = None
    router.start()
    try:
        with Heartbeat("drill", progress):
            send_until(lambda: router.alarm_state == "OK", 30)  # the observer has seen the primary work
            send_for(plan.steady_seconds)
            fault_at = time.time()
            if plan.fault in ("api", "region"):
                phase[0] = f"fault: {primary}'s API stopped"
                environment.stop_api(primary)
                if plan.fault == "region":
                    environment.pause_replication_from(primary)
                publish_alarm(environment, primary, target.names.api_5xx_alarm)
                send_for(plan.outage_seconds)
                if plan.fault == "region":
                    survivor = environment.payment_records(secondary, f"drill-{tag}")
                    at_risk = sorted(
                        t for t, at in acknowledged.items() if at < fault_at and t not in survivor
                    )
                phase[0] = f"{primary} back, out of service until failback"
                environment.start_api(primary)
                if plan.fault == "region":
                    environment.resume_replication_from(primary)
            elif plan.fault == "gray":
                phase[0] = f"fault: {primary}'s data plane denied, /health still 200"
                environment.deny_data_plane(primary)
                send_for(plan.outage_seconds)
                flag = regions.flag_of(target, primary)
                primary_flag = flag.in_service or target.names.canary_alarm(primary) in flag.reason
                phase[0] = f"{primary}'s data plane back"
                environment.restore_data_plane(primary)
            else:  # replication-paused
                phase[0] = f"fault: replication out of {primary} paused; switchover to {secondary}"
                environment.pause_replication_from(primary)
                outcome: dict[str, object] = {}

                def switch() -> None:
                    try:
                        report = regions.switchover(
                            target,
                            primary,
                            reason="drill: planned switchover",
                            bound_seconds=plan.outage_seconds + 30,
                        )
                        outcome["report"] = report
                        outcome["at"] = time.time()
                    except regions.RefusedError as error:
                        outcome["error"] = str(error)

                worker = threading.Thread(target=switch, daemon=True)
                switchover_started = time.time()
                worker.start()
                send_for(plan.outage_seconds)
                resumed_at = time.time()
                phase[0] = f"replication out of {primary} resumed"
                environment.resume_replication_from(primary)
                while worker.is_alive():
                    send_for(0.5)
                if "report" in outcome:
                    caught_up_at = float(outcome["at"])  # type: ignore[arg-type]
                    switchover_summary = outcome["report"].summary()  # type: ignore[attr-defined]
                else:
                    switchover_summary = f"refused: {outcome.get('error')}"
            send_until(lambda: endpoints[client.endpoint] == secondary, 30)
            send_for(plan.recovered_seconds)  # the primary stays out of service: failback is manual
            phase[0] = f"failback of {primary} (waits for its canary to pass)"
            failback_at = _fail_back(target, primary, send_for)
            phase[0] = "failed back"
            send_for(plan.recovered_seconds + HEALTH_CHECK_FAILURE_THRESHOLD * plan.health_interval_seconds)
    finally:
        router.stop()
    report = audit(environment, target, attempts, acknowledged, fault_at, failback_at, plan.fault)
    report.caller_errors = caller_errors
    report.failed_attempts = retried
    report.route53_decided_at = router.decided_at
    moves = [m for m in client.moves if endpoints[m.to_endpoint] == secondary and m.at + wall >= fault_at]
    if moves:
        report.client_move_reason = moves[0].reason.replace(target.api_url(primary), primary)
    report.at_risk = at_risk
    report.at_risk_seconds = max(0.0, fault_at - min((acknowledged[t] for t in at_risk), default=fault_at))
    if plan.fault == "replication-paused":
        report.detect_at, report.detected_by = switchover_started, "the operator starts the switchover"
    else:
        canary = first_failed_canary(environment, target, fault_at)
        check = router.first_failed_check_at
        signals = [
            (t, who)
            for t, who in ((canary, "first failed canary"), (check, "first failed /health check"))
            if t
        ]
        if signals:
            report.detect_at, report.detected_by = min(signals)
    report.decide_at = moves[0].at + wall if moves else None
    report.primary_orchestrator_idle = primary_flag
    report.resumed_at, report.caught_up_at, report.switchover = resumed_at, caught_up_at, switchover_summary
    report.consistency = "strong" if environment.strong_consistency else "eventual"
    return report


def _fail_back(target: Target, region: str, send_for: Callable[[float], None]) -> float:
    """The operator's failback, retried while its checks (the canary above all) are not yet met."""
    deadline = time.time() + 60
    while True:
        try:
            regions.failback(
                target,
                region,
                reason="drill: the primary is back",
                canary_passed_for=DRILL_CANARY_PASSED_SECONDS,
            )
            return time.time()
        except regions.RefusedError:
            if time.time() > deadline:
                raise
            send_for(1.0)


def audit(
    environment: LocalEnvironment,
    target: Target,
    attempts: list[Attempt],
    acknowledged: dict[str, float],
    fault_at: float,
    failback_at: float,
    fault: str,
) -> DrillReport:
    """Wait for replication to drain, then compare what the client was told with what is stored."""
    prefix = next(iter(acknowledged))[: len("drill-xxxxxx")] if acknowledged else "drill-"
    survivor = target.secondary_region
    deadline = time.time() + 30
    while time.time() < deadline:
        if set(acknowledged) <= set(environment.payment_records(survivor, prefix)):
            break
        time.sleep(1)
    counts = {region: environment.payment_records(region, prefix) for region in target.regions}
    lost = sorted(set(acknowledged) - set(counts[survivor]))
    union: Counter[str] = Counter()
    for region_counts in counts.values():
        for transaction_id, n in region_counts.items():
            union[transaction_id] = max(union[transaction_id], n)
    duplicates = sorted(t for t, n in union.items() if n > 1)
    in_secondary = [
        a.at for a in attempts if a.region == target.secondary_region and a.acknowledged and a.at >= fault_at
    ]
    failover_at = min(in_secondary) if in_secondary else None
    oldest_lost = min((acknowledged[t] for t in lost), default=fault_at)
    return DrillReport(
        fault=fault,
        sent=len({a.transaction_id for a in attempts}),
        acknowledged=len(acknowledged),
        failed_attempts=sum(1 for a in attempts if not a.acknowledged),
        rto_seconds=(failover_at - fault_at) if failover_at else None,
        lost=lost,
        rpo_seconds=max(0.0, fault_at - oldest_lost),
        duplicates=duplicates,
        at_risk=[],
        at_risk_seconds=0.0,
        failover_at=failover_at,
        failback_at=failback_at,
        fault_at=fault_at,
        attempts=attempts,
    )


def draw_timeline(report: DrillReport, regions_: tuple[str, str], path: Path) -> Path:
    """Accepted and failed requests per second per region, with the fault, failover and failback."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    start = min(a.at for a in report.attempts)
    seconds = int(max(a.at for a in report.attempts) - start) + 1
    figure, axis = plt.subplots(figsize=(10, 4))
    styles = {
        (regions_[0], True): ("tab:blue", "-"),
        (regions_[1], True): ("tab:green", "-"),
        (regions_[0], False): ("tab:red", ":"),
        (regions_[1], False): ("tab:orange", ":"),
    }
    for (region, ok), (colour, line) in styles.items():
        per_second = [0] * seconds
        for attempt in report.attempts:
            if attempt.region == region and attempt.acknowledged == ok:
                per_second[int(attempt.at - start)] += 1
        axis.plot(
            range(seconds),
            per_second,
            color=colour,
            linestyle=line,
            label=f"{region} {'accepted' if ok else 'failed'}",
        )
    markers = (
        (report.fault_at, "fault", "black"),
        (report.detect_at, "detect", "tab:gray"),
        (report.decide_at, "decide", "tab:purple"),
        (report.failover_at, "execute", "tab:green"),
        (report.failback_at, "failback", "tab:blue"),
    )
    for step, (at, label, colour) in enumerate(markers):
        if at is not None:
            axis.axvline(at - start, color=colour, linestyle="--")
            # The first four fall within seconds of each other: their labels go one under another.
            axis.text(at - start + 0.2, axis.get_ylim()[1] * (0.93 - 0.09 * (step % 4)), label, color=colour)
    axis.set_xlabel("seconds since the drill started")
    axis.set_ylabel("requests per second")
    axis.set_title(
        f"DR drill ({report.fault}): RTO {report.rto_seconds or 0:.1f} s, lost {len(report.lost)}, "
        f"duplicates {len(report.duplicates)}"
    )
    axis.legend(loc="upper right", fontsize="small")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
