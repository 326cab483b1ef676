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
from collections.abc import Callable
from dataclasses import dataclass

from chalicelib.failover_numbers import HEALTH_CHECK_FAILURE_THRESHOLD
from drills.report import Attempt, DrillReport, audit
from drills.route53_model import Route53LikeRouter, first_failed_canary, publish_alarm
from localenv.environment import LocalEnvironment
from localenv.progress import Heartbeat
from operations import regions
from operations.targets import Target
from payments_client import PaymentsClient, PaymentsUnavailable, RetryPolicy

# The drill's faults, by name.
FAULTS = {
    "api": "the primary's API stops; its 5XX alarm reaches its own orchestrator",
    "region": "the primary's API stops and replication out of it stops (the region is lost)",
    "gray": "the primary's data plane is denied while its /health answers 200; its orchestrator is off",
    "replication-paused": "replication out of the primary pauses during a planned switchover",
}

# A drill's failback waits this long for the canary against the primary to pass (AWS: 10 min).
DRILL_CANARY_PASSED_SECONDS = 3.0
# The client leaves the preferred region for at least this long (its default: 5 min), scaled down
# with the drill's other intervals.
DRILL_RETURN_AFTER_SECONDS = 5.0


def drill_client_policy(
    health_interval: float, return_after: float = DRILL_RETURN_AFTER_SECONDS
) -> RetryPolicy:
    """The merchants' client as every drill runs it: its waits scaled down with the drill's intervals."""
    return RetryPolicy(
        timeout=2.0, base_delay=0.1, max_delay=1.0, health_interval=health_interval, return_after=return_after
    )


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
        policy=drill_client_policy(plan.health_interval_seconds),
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
            failback_at = fail_back(target, primary, send_for)
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
    report.fault_description = FAULTS[plan.fault]
    return report


def fail_back(target: Target, region: str, send_for: Callable[[float], None]) -> float:
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
