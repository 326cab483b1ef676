"""Whether a region takes payments: its in-service flag and its health, in pure Python.

The flag is what the orchestrator and the operator change; health is what Route 53 sees. A
region is healthy only when it is in service *and* its dependencies answer, so taking a region
out of service makes its health check fail and Route 53 sends clients to the peer.

A planned switchover drains a region first: still in service (healthy, so clients keep coming
to it) but not accepting payments, which its API refuses with a retryable 503 until replication
has carried everything it took to the peer; only then is it taken out of service.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import StrEnum
from typing import Any, NamedTuple

from chalicelib.failover_numbers import HEALTH_CACHE_SECONDS


class RegionFlag(NamedTuple):
    """A region's in-service flag and who set it, when and why (the audit record)."""

    in_service: bool
    changed_by: str = "deployment"
    reason: str = "initial state"
    changed_at: str = ""
    # False while a switchover drains the region: healthy, but its API refuses payments.
    accepting: bool = True

    def to_text(self) -> str:
        return json.dumps(
            {
                "in_service": self.in_service,
                "changed_by": self.changed_by,
                "reason": self.reason,
                "changed_at": self.changed_at,
                "accepting": self.accepting,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_text(cls, text: str) -> RegionFlag:
        """Read a stored flag; anything unreadable counts as out of service (fail safe)."""
        try:
            value: Any = json.loads(text)
        except ValueError:
            return cls(in_service=False, reason="unreadable flag", accepting=False)
        if not isinstance(value, dict) or not isinstance(value.get("in_service"), bool):
            return cls(in_service=False, reason="unreadable flag", accepting=False)
        accepting = value.get("accepting", True)  # flags written before draining existed
        return cls(
            in_service=value["in_service"],
            changed_by=str(value.get("changed_by", "")),
            reason=str(value.get("reason", "")),
            changed_at=str(value.get("changed_at", "")),
            accepting=accepting if isinstance(accepting, bool) else False,
        )

    @property
    def draining(self) -> bool:
        """In service but refusing payments: a switchover is waiting for replication."""
        return self.in_service and not self.accepting


class HealthCheck(StrEnum):
    """What ``/health`` checks, in order: the first that fails is the answer's ``failing`` field.

    Failback reads that field: a region whose only failing check is :attr:`IN_SERVICE_FLAG` is
    healthy apart from the flag it is about to get back.
    """

    PAYMENTS_TABLE = "payments table"
    PAYMENT_QUEUE = "payment queue"
    IN_SERVICE_FLAG = "in-service flag"


class HealthReport(NamedTuple):
    """Whether this region can take payments, and the check that fails if it cannot."""

    healthy: bool
    region: str
    failing: str | None = None
    # The error of the check that could not answer, for the log; never part of the answer.
    cause: BaseException | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": "healthy" if self.healthy else "unhealthy", "region": self.region}
        if self.failing:
            body["failing"] = self.failing
        return body


Check = tuple[HealthCheck, Callable[[], bool]]


def evaluate_health(region: str, checks: list[Check]) -> HealthReport:
    """Run ``checks`` in order; the first that fails (False or raises) names the report."""
    for name, check in checks:
        try:
            passed = check()
        except Exception as error:  # noqa: BLE001 - a check that cannot answer has failed; the name says which
            return HealthReport(healthy=False, region=region, failing=name, cause=error)
        if not passed:
            return HealthReport(healthy=False, region=region, failing=name)
    return HealthReport(healthy=True, region=region)


class Cached[T]:
    """The last value of a computation, kept for ``ttl`` seconds (the health report, the flag)."""

    def __init__(self, clock: Callable[[], float], ttl: float = HEALTH_CACHE_SECONDS) -> None:
        self._clock = clock
        self._ttl = ttl
        self._value: T | None = None
        self._at = 0.0

    def get(self, compute: Callable[[], T]) -> T:
        now = self._clock()
        if self._value is None or now - self._at >= self._ttl:
            self._value, self._at = compute(), now
        return self._value

    def clear(self) -> None:
        self._value = None
