"""The webhook drill: a merchant's receiver down for an hour, and a region lost in the middle.

Time is compressed: the local environment runs the webhook retry schedule ``scale`` times faster
(an hour in ten seconds at the default 360). A merchant registers an endpoint (its receiver on
loopback verifies every delivery with ``payments_client.verify_webhook``) and pays through both
regions with its client. The receiver answers 503 for the first hour; in the middle of it the
primary region is lost (its API and its event handlers stop) for half an hour, then comes back.
The report gives the share of events delivered in the end, the deliveries of one event id beyond
its first (duplicates, each with that one id), the deliveries that did not verify, and the times
of one event's attempts against the schedule.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import requests

from chalicelib.webhooks import retry_schedule
from drills.scenario import drill_client_policy
from localenv.environment import LocalEnvironment
from localenv.progress import Heartbeat
from localenv.webhook_receiver import LoopbackReceiver
from operations.targets import Target
from payments_client import PaymentsClient, PaymentsUnavailable


@dataclass(frozen=True)
class WebhookDrillPlan:
    """How long each part lasts, in the drill's compressed seconds, and how fast time runs."""

    scale: float = 360.0
    payments: int = 12
    receiver_down_seconds: float = 3600.0
    region_lost_at_seconds: float = 1200.0
    region_lost_for_seconds: float = 1800.0
    # After everything, how long to wait for the last retries (compressed): past the 5 h attempt.
    settle_seconds: float = 5 * 3600.0


@dataclass
class WebhookDrillReport:
    """What the merchant's receiver saw."""

    plan: WebhookDrillPlan
    acknowledged: list[str]
    delivered: dict[str, dict[str, Any]]
    duplicates: int
    unverified: int
    caller_errors: int
    attempts_of_first: list[float] = field(default_factory=list)

    @property
    def delivered_share(self) -> float:
        wanted = set(self.acknowledged)
        got = {e["payment"]["transaction_id"] for e in self.delivered.values()}
        return len(wanted & got) / len(wanted) if wanted else 0.0

    @property
    def passed(self) -> bool:
        return self.delivered_share == 1.0 and self.unverified == 0 and self.caller_errors == 0

    def table(self) -> str:
        schedule = retry_schedule()
        rows = [
            ("payments acknowledged / events delivered", f"{len(self.acknowledged)} / {len(self.delivered)}"),
            ("events delivered in the end", f"{self.delivered_share:.0%}"),
            ("deliveries of an event already delivered (same webhook-id)", str(self.duplicates)),
            ("deliveries that did not verify", str(self.unverified)),
            ("caller errors while paying", str(self.caller_errors)),
            ("verdict", "PASS" if self.passed else "FAIL"),
            ("", ""),
            ("attempts of an event the survivor stored (compressed time after the first)", "schedule"),
        ]
        for n, at in enumerate(self.attempts_of_first):
            planned = schedule[n] if n < len(schedule) else None
            rows.append(
                (f"  attempt {n + 1}: {_duration(at)}", _duration(planned) if planned is not None else "-")
            )
        width = max(len(label) for label, _ in rows)
        return "\n".join(f"{label:<{width}}  {value}".rstrip() for label, value in rows)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def run_webhook_drill(
    environment: LocalEnvironment, target: Target, plan: WebhookDrillPlan
) -> WebhookDrillReport:
    """Run the drill on a started local environment whose ``webhook_time_scale`` is ``plan.scale``."""
    real = 1 / plan.scale
    primary = target.primary_region
    started = time.monotonic()
    receiver = LoopbackReceiver()
    receiver.down_until = started + plan.receiver_down_seconds * real
    key = {"x-api-key": target.api_key or ""}
    made = requests.post(
        environment.api_url(primary) + "/webhook-endpoints",
        json={"url": receiver.url, "events": ["payment.processed"]},
        headers=key,
        timeout=10,
    )
    made.raise_for_status()
    receiver.secrets.append(made.json()["secret"])
    client = PaymentsClient(
        target.api_key or "",
        endpoints=[environment.api_url(r) for r in target.regions],
        policy=drill_client_policy(health_interval=0.5, return_after=2.0),
    )
    tag = uuid.uuid4().hex[:6]
    acknowledged: list[str] = []
    paid_in_secondary: list[str] = []
    errors = 0
    lost_from = started + plan.region_lost_at_seconds * real
    lost_until = lost_from + plan.region_lost_for_seconds * real
    interval = plan.receiver_down_seconds * real / plan.payments
    lost = False
    try:
        with Heartbeat(
            "webhook drill", lambda: f"{len(acknowledged)} paid, {len(receiver.events)} delivered"
        ):
            for n in range(plan.payments):
                now = time.monotonic()
                if not lost and lost_from <= now < lost_until:
                    environment.stop_api(primary)
                    environment.stop_events(primary)
                    lost = True
                if lost and now >= lost_until:
                    environment.start_api(primary)
                    environment.start_events(primary)
                    lost = False
                txn = f"hook-drill-{tag}-{n:03d}"
                body = {"transaction_id": txn, "customer_id": "drill", "amount": "7.00", "currency": "USD"}
                try:
                    answer = client.process(body)
                    if answer.status in (200, 201):
                        acknowledged.append(txn)
                        if answer.endpoint == environment.api_url(target.secondary_region):
                            paid_in_secondary.append(txn)
                except PaymentsUnavailable:
                    errors += 1
                time.sleep(max(0.0, started + (n + 1) * interval - time.monotonic()))
            if lost:
                time.sleep(max(0.0, lost_until - time.monotonic()))
                environment.start_api(primary)
                environment.start_events(primary)
            deadline = time.monotonic() + plan.settle_seconds * real
            wanted = set(acknowledged)
            while time.monotonic() < deadline:
                got = {e["payment"]["transaction_id"] for e in receiver.events}
                if wanted <= got:
                    break
                time.sleep(0.2)
    finally:
        receiver.close()
    # The schedule of one event the survivor stored while the primary was lost: its chain of
    # attempts is the survivor's alone (the primary, restarted, announces its own events again).
    chosen = paid_in_secondary[0] if paid_in_secondary else (acknowledged[0] if acknowledged else "")
    first = [a.at for a in receiver.arrivals if _transaction(a.body) == chosen]
    delivered_once: set[str] = set()
    duplicates = 0
    for arrival in receiver.arrivals:
        webhook_id = arrival.headers.get("webhook-id", "")
        if arrival.status == 204:
            if webhook_id in delivered_once:
                duplicates += 1
            delivered_once.add(webhook_id)
    return WebhookDrillReport(
        plan=plan,
        acknowledged=acknowledged,
        delivered={e["id"]: e for e in receiver.events},
        duplicates=duplicates,
        unverified=receiver.unverified,
        caller_errors=errors,
        attempts_of_first=[(at - first[0]) * plan.scale for at in first] if first else [],
    )


def _transaction(body: str) -> str:
    """The transaction id of the payment an event announces ("" for anything else)."""
    try:
        return str(json.loads(body)["payment"]["transaction_id"])
    except (ValueError, KeyError, TypeError):
        return ""
