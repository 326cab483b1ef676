"""The DR drill: steady payments, a primary-region fault, failover, a checked failback, a report.

A client sends payments to ``POST /process`` at a steady rate and routes them the way Route 53's
failover record would: to the primary while its health check passes, else to the secondary,
with health polled at a fixed interval and a region declared unhealthy (or healthy again)
after 3 consecutive results, as Route 53 does. A request that fails is retried once, with the
same transaction id, on the region the router then chooses.

The fault stops the primary's API and publishes the primary's API 5XX alarm to its ops-alert
topic, as CloudWatch would: the orchestrator takes the region out of service. With
``--fault region`` replication out of the primary is cut at the same moment, as when the whole
region is lost; it is restored before the audit. After a while the API comes back, and the
operator's failback (``payments-dr failback``) returns the primary to service once its checks
pass. From what the client observed, the drill reports:

- RTO: from the fault to the first payment accepted by the secondary;
- RPO: payments acknowledged to the client that the surviving region lacks once replication
  has drained, as a count and as the age of the oldest such payment at the fault;
- duplicates: transaction ids stored more than once (must be 0);
and draws accepted / failed requests per second per region with the fault, failover and
failback marked.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import requests

from chalicelib.items import is_payment_record
from localenv.environment import LocalEnvironment
from localenv.progress import Heartbeat
from operations import regions
from operations.targets import Target

FAILURE_THRESHOLD = 3  # Route 53: a region changes state after 3 consecutive checks


@dataclass(frozen=True)
class DrillPlan:
    """How long each phase lasts and how hard the client pushes."""

    rate_per_second: float = 10.0
    steady_seconds: float = 5.0
    outage_seconds: float = 10.0
    recovered_seconds: float = 5.0
    health_interval_seconds: float = 1.0
    fault: str = "api"  # "api": the primary's API fails; "region": and replication out of it stops


@dataclass
class Attempt:
    """One request the client made."""

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
    attempts: list[Attempt] = field(repr=False, default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.lost and not self.duplicates and self.rto_seconds is not None

    def table(self) -> str:
        rows = [
            ("fault", f"primary {self.fault} failure"),
            ("payments sent / acknowledged", f"{self.sent} / {self.acknowledged}"),
            ("failed attempts (retried)", str(self.failed_attempts)),
            (
                "RTO: fault -> first payment accepted by the secondary",
                f"{self.rto_seconds:.1f} s" if self.rto_seconds is not None else "never",
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
            ("verdict", "PASS" if self.passed else "FAIL"),
        ]
        width = max(len(label) for label, _ in rows)
        return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)


class Route53LikeRouter:
    """Primary while its health check passes, else secondary; checks at a fixed interval."""

    def __init__(self, target: Target, interval: float) -> None:
        self._target = target
        self._interval = interval
        self.primary_healthy = True
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
            if passing == self.primary_healthy:
                self._streak = 0
                continue
            self._streak += 1
            if self._streak >= FAILURE_THRESHOLD:
                self.primary_healthy, self._streak = passing, 0

    def region(self) -> str:
        return self._target.primary_region if self.primary_healthy else self._target.secondary_region


def publish_alarm(environment: LocalEnvironment, region: str, alarm_name: str) -> None:
    """What CloudWatch sends to the ops-alert topic when an alarm enters ALARM."""
    message = {
        "AlarmName": alarm_name,
        "NewStateValue": "ALARM",
        "OldStateValue": "OK",
        "NewStateReason": "drill: the API stopped answering",
        "AlarmArn": f"arn:aws:cloudwatch:{region}:123456789012:alarm:{alarm_name}",
    }
    environment.client("sns", region).publish(
        TopicArn=environment.resources[region].ops_alert_topic_arn, Message=json.dumps(message)
    )


def run_drill(environment: LocalEnvironment, target: Target, plan: DrillPlan) -> DrillReport:
    """Run the drill on a started local environment and audit both regions' tables."""
    primary, secondary = target.primary_region, target.secondary_region
    router = Route53LikeRouter(target, plan.health_interval_seconds)
    session = requests.Session()
    headers = {"Content-Type": "application/json", "x-api-key": target.api_key or ""}
    attempts: list[Attempt] = []
    acknowledged: dict[str, float] = {}
    tag = uuid.uuid4().hex[:6]
    sequence = 0

    def send_one() -> None:
        nonlocal sequence
        sequence += 1
        body = {
            "transaction_id": f"drill-{tag}-{sequence:05d}",
            "customer_id": "drill",
            "amount": "10.00",
            "currency": "USD",
        }
        for _ in range(2):  # one retry, same transaction id, wherever the router says now
            region = router.region()
            started = time.time()
            try:
                response = session.post(
                    target.api_url(region) + "/process", data=json.dumps(body), headers=headers, timeout=2
                )
                ok = response.status_code in (200, 201)
            except requests.RequestException:
                ok = False
            attempts.append(Attempt(started, region, body["transaction_id"], ok))
            if ok:
                acknowledged.setdefault(body["transaction_id"], started)
                return

    def send_for(seconds: float) -> None:
        deadline = time.time() + seconds
        while time.time() < deadline:
            started = time.time()
            send_one()
            time.sleep(max(0.0, 1 / plan.rate_per_second - (time.time() - started)))

    phase = ["steady"]

    def progress() -> str:
        return (
            f"{phase[0]}; {len(attempts)} attempts, {len(acknowledged)} acknowledged, "
            f"traffic to {router.region()}"
        )

    router.start()
    try:
        with Heartbeat("drill", progress):
            send_for(plan.steady_seconds)
            fault_at = time.time()
            phase[0] = f"fault: {primary}'s API stopped"
            environment.stop_api(primary)
            if plan.fault == "region":
                environment.pause_replication_from(primary)
            publish_alarm(environment, primary, target.names.api_5xx_alarm)
            send_for(plan.outage_seconds)
            at_risk: list[str] = []
            if plan.fault == "region":
                survivor = stored(environment, secondary, f"drill-{tag}")
                at_risk = sorted(t for t, at in acknowledged.items() if at < fault_at and t not in survivor)
            phase[0] = f"{primary} back, out of service until failback"
            environment.start_api(primary)
            if plan.fault == "region":
                environment.resume_replication_from(primary)
            send_for(
                plan.recovered_seconds
            )  # the primary is back but stays out of service: failback is manual
            regions.failback(target, primary, reason="drill: the primary's API is back")
            failback_at = time.time()
            phase[0] = "failed back"
            send_for(plan.recovered_seconds + FAILURE_THRESHOLD * plan.health_interval_seconds)
    finally:
        router.stop()
    report = audit(environment, target, attempts, acknowledged, fault_at, failback_at, plan.fault)
    report.at_risk = at_risk
    report.at_risk_seconds = max(0.0, fault_at - min((acknowledged[t] for t in at_risk), default=fault_at))
    return report


def stored(environment: LocalEnvironment, region: str, prefix: str) -> Counter[str]:
    client = environment.client("dynamodb", region)
    counts: Counter[str] = Counter()
    for page in client.get_paginator("scan").paginate(
        TableName=environment.resources[region].payments_table, ConsistentRead=True
    ):
        for item in page["Items"]:
            transaction_id = item["transaction_id"]["S"]
            if transaction_id.startswith(prefix) and is_payment_record(item):
                counts[transaction_id] += 1
    return counts


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
        if set(acknowledged) <= set(stored(environment, survivor, prefix)):
            break
        time.sleep(1)
    counts = {region: stored(environment, region, prefix) for region in target.regions}
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
    for at, label, colour in (
        (report.fault_at, "fault", "black"),
        (report.failover_at, "failover", "tab:green"),
        (report.failback_at, "failback", "tab:blue"),
    ):
        if at is not None:
            axis.axvline(at - start, color=colour, linestyle="--")
            axis.text(at - start + 0.2, axis.get_ylim()[1] * 0.92, label, color=colour)
    axis.set_xlabel("seconds since the drill started")
    axis.set_ylabel("requests per second")
    axis.set_title(
        f"DR drill: RTO {report.rto_seconds or 0:.1f} s, lost {len(report.lost)}, "
        f"duplicates {len(report.duplicates)}"
    )
    axis.legend(loc="upper right", fontsize="small")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
