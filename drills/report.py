"""What a drill measured from the merchant's side, and the audit of both regions' tables that decides it."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from localenv.environment import LocalEnvironment
from operations.targets import Target


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
    # What the fault was, in words (scenario.FAULTS).
    fault_description: str = ""
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
            ("fault", f"{self.fault}: {self.fault_description}" if self.fault_description else self.fault),
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
