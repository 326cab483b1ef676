"""Status, failover, switchover and failback of the two regions: what ``payments-dr`` does to them.

Failover sets a region's in-service flag off (its health check then fails and Route 53 moves
clients to the peer). Switchover is the planned move: the region first stops taking payments
while staying healthy (draining), then waits until its queue is empty and replication has
carried everything it took to the peer, and only then goes out of service, so no payment it
acknowledged is missing where clients go next. Failback is deliberate: it refuses unless the
peer is healthy, the region itself is healthy apart from its flag, and replication has caught
up (a marker written in the peer arrives in the region); then it sets the flag on, recording
who and why.
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass
from typing import Any

import requests

from chalicelib.adapters.region_flag import SsmRegionControl
from chalicelib.failover import paging_alarms, trigger_alarms
from chalicelib.failover_numbers import (
    CANARY,
    FAILBACK_MARKER_TIMEOUT_SECONDS,
    MIN_SWITCHOVER_WAIT_SECONDS,
    REPLICATION_SAFETY_FACTOR,
    REPLICATION_WINDOW_SECONDS,
)
from chalicelib.metrics import METRICS_NAMESPACE, SERVICE_DIMENSION, Metric
from chalicelib.names import SERVICE_NAME
from chalicelib.regions import HealthCheck, RegionFlag
from chalicelib.schema import PaymentsTableSchema as Schema
from operations.targets import Target

HEALTH_TIMEOUT_SECONDS = 5
QUEUE_POLL_SECONDS = 0.5
# The share of traffic is each region's payments over this window (its functions' own metric).
SHARE_WINDOW_SECONDS = 300


class RefusedError(RuntimeError):
    """A failover or failback that would be unsafe, with the reason."""


@dataclass(frozen=True)
class RegionStatus:
    """One row of ``payments-dr status``."""

    region: str
    in_service: bool
    flag_reason: str
    health: str
    alarms_in_alarm: list[str]
    replication_latency_ms: float | None
    queue_depth: int
    dlq_depth: int
    # The peer's canary against this region: its alarm's state and for how long.
    canary: str = ""
    # Payments this region processed over the last SHARE_WINDOW_SECONDS (None: no data).
    payments_recent: int | None = None


def _flags(target: Target) -> SsmRegionControl:
    """The same flag store the functions use, on the operator's clients."""
    return SsmRegionControl(
        parameter=target.names.in_service_parameter, client=lambda r: target.client("ssm", r)
    )


def flag_of(target: Target, region: str) -> RegionFlag:
    return _flags(target).flag(region)


def set_flag(target: Target, region: str, flag: RegionFlag) -> None:
    _flags(target).set_flag(region, flag)


def health_of(target: Target, region: str) -> tuple[int, dict[str, Any]]:
    """``GET /health`` of ``region``: status code and body (0 and the error if unreachable)."""
    url = target.api_url(region).rstrip("/")
    try:
        response = requests.get(url + "/health", timeout=HEALTH_TIMEOUT_SECONDS)
        return response.status_code, response.json()
    except (requests.RequestException, ValueError) as error:
        return 0, {"failing": f"unreachable at {url}: {type(error).__name__}"}


def actor(target: Target, region: str) -> str:
    """Who is acting: the caller's IAM identity."""
    return str(target.client("sts", region).get_caller_identity()["Arn"])


def _depth(target: Target, region: str, queue: str, *, in_flight: bool = False) -> int:
    """Messages waiting in ``queue``, and with ``in_flight`` also those a consumer holds."""
    names = ["ApproximateNumberOfMessages", *(["ApproximateNumberOfMessagesNotVisible"] if in_flight else [])]
    attributes = target.client("sqs", region).get_queue_attributes(
        QueueUrl=target.queue_url(region, queue), AttributeNames=names
    )["Attributes"]
    return sum(int(attributes[name]) for name in names)


def _alarms_in_alarm(target: Target, region: str) -> list[str]:
    names = sorted(trigger_alarms(target.names) | paging_alarms(target.names))
    alarms = target.client("cloudwatch", region).describe_alarms(AlarmNames=names).get("MetricAlarms", [])
    return [a["AlarmName"] for a in alarms if a["StateValue"] == "ALARM"]


def _replication_latency(target: Target, region: str, peer: str) -> float | None:
    now = time.time()
    points = (
        target.client("cloudwatch", region)
        .get_metric_statistics(
            Namespace="AWS/DynamoDB",
            MetricName="ReplicationLatency",
            Dimensions=[
                {"Name": "TableName", "Value": target.names.payments_table},
                {"Name": "ReceivingRegion", "Value": peer},
            ],
            StartTime=now - REPLICATION_WINDOW_SECONDS,
            EndTime=now,
            Period=60,
            Statistics=["Average"],
        )
        .get("Datapoints", [])
    )
    return max(p["Average"] for p in points) if points else None


def payments_processed(target: Target, region: str, since: float | None = None) -> int | None:
    """Payments ``region`` processed (``/process`` and its queue's processor) since ``since``
    (default: over the share window), from its functions' own metric; None with no data."""
    now = time.time()
    start = now - SHARE_WINDOW_SECONDS if since is None else since
    # CloudWatch's periods are whole minutes: one period spans the window.
    period = max(60, math.ceil((now - start) / 60) * 60)
    points = (
        target.client("cloudwatch", region)
        .get_metric_statistics(
            Namespace=METRICS_NAMESPACE,
            MetricName=Metric.PROCESSED,
            Dimensions=[{"Name": SERVICE_DIMENSION, "Value": SERVICE_NAME}],
            StartTime=start,
            EndTime=now,
            Period=period,
            Statistics=["Sum"],
        )
        .get("Datapoints", [])
    )
    return int(sum(p["Sum"] for p in points)) if points else None


def shares(counts: dict[str, int | None]) -> dict[str, float]:
    """Each region's share of the payments both processed (empty with none)."""
    total = sum(n or 0 for n in counts.values())
    return {region: (n or 0) / total for region, n in counts.items()} if total else {}


def peer_of(target: Target, region: str) -> str:
    if region not in target.regions:
        raise RefusedError(f"{region} is not one of this deployment's regions {target.regions}")
    return next(r for r in target.regions if r != region)


def status(target: Target) -> list[RegionStatus]:
    """Both regions: flag, share of payments, health, alarms, replication latency, queue and DLQ depth."""
    rows = []
    for region in target.regions:
        flag = flag_of(target, region)
        code, body = health_of(target, region)
        health = "healthy" if code == 200 else f"{code or 'down'} {body.get('failing', '')}".strip()
        rows.append(
            RegionStatus(
                region=region,
                in_service=flag.in_service,
                flag_reason=f"{flag.reason} ({flag.changed_by})",
                health=health,
                alarms_in_alarm=_alarms_in_alarm(target, region),
                replication_latency_ms=_replication_latency(target, region, peer_of(target, region)),
                queue_depth=_depth(target, region, target.names.payment_queue),
                dlq_depth=_depth(target, region, target.names.payment_dlq),
                canary=_canary_text(*canary_state(target, region)),
                payments_recent=payments_processed(target, region),
            )
        )
    return rows


def render_status(rows: list[RegionStatus]) -> str:
    share_of = shares({row.region: row.payments_recent for row in rows})
    header = (
        "region",
        "in service",
        f"share ({SHARE_WINDOW_SECONDS // 60} min)",
        "health",
        "peer's canary",
        "alarms",
        "replication",
        "queue",
        "DLQ",
        "flag set by / why",
    )
    lines = [header]
    for row in rows:
        latency = (
            f"{row.replication_latency_ms:.0f} ms" if row.replication_latency_ms is not None else "no data"
        )
        lines.append(
            (
                row.region,
                "yes" if row.in_service else "NO",
                f"{share_of[row.region]:.0%} ({row.payments_recent or 0})" if share_of else "no payments",
                row.health,
                row.canary,
                ", ".join(row.alarms_in_alarm) or "none",
                latency,
                str(row.queue_depth),
                str(row.dlq_depth),
                row.flag_reason,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines
    )


def failover(target: Target, region: str, *, reason: str, force: bool = False) -> RegionFlag:
    """Take ``region`` out of service; refuses if the peer is not in service, unless forced."""
    peer = peer_of(target, region)
    if not force and not flag_of(target, peer).in_service:
        raise RefusedError(
            f"{peer} is not in service: taking {region} out would leave no region (use --force)"
        )
    flag = RegionFlag(in_service=False, changed_by=actor(target, region), reason=reason, changed_at=_now())
    set_flag(target, region, flag)
    return flag


def failback(
    target: Target,
    region: str,
    *,
    reason: str,
    canary_passed_for: float = CANARY.failback_passing_seconds,
) -> tuple[RegionFlag, float]:
    """Return ``region`` to service after the checks; returns the flag and the replication lag (s).

    Beyond ``/health``: the canary the peer runs against ``region`` (real payments through its
    API) must have passed for ``canary_passed_for`` seconds; with 0, it must only not be failing.
    """
    peer = peer_of(target, region)
    peer_code, peer_body = health_of(target, peer)
    if peer_code != 200:
        raise RefusedError(f"{peer} is not healthy ({peer_body.get('failing', peer_code)}): fix it first")
    code, body = health_of(target, region)
    if code != 200 and body.get("failing") != HealthCheck.IN_SERVICE_FLAG:
        raise RefusedError(f"{region} is not healthy apart from its flag ({body.get('failing', code)})")
    _canary_has_passed(target, region, peer, canary_passed_for)
    lag = replication_caught_up(target, source=peer, destination=region)
    flag = RegionFlag(in_service=True, changed_by=actor(target, region), reason=reason, changed_at=_now())
    set_flag(target, region, flag)
    return flag, lag


@dataclass(frozen=True)
class SwitchoverReport:
    """How long each step of a switchover took, in seconds."""

    from_region: str
    to_region: str
    drain_seconds: float
    queue_seconds: float
    replication_seconds: float
    bound_seconds: float
    total_seconds: float

    def summary(self) -> str:
        return (
            f"{self.from_region} drained in {self.drain_seconds:.1f} s, its queue emptied in "
            f"{self.queue_seconds:.1f} s, replication to {self.to_region} caught up in "
            f"{self.replication_seconds:.1f} s (bound {self.bound_seconds:.0f} s); {self.from_region} is out of "
            f"service and {self.to_region} takes the payments ({self.total_seconds:.1f} s in all)"
        )


def switchover(
    target: Target,
    region: str,
    *,
    reason: str,
    flag_cache_seconds: float | None = None,
    bound_seconds: float | None = None,
) -> SwitchoverReport:
    """Move payments from ``region`` to its peer without losing or doubling one.

    1. Drain: ``region`` stays healthy (clients keep coming) but refuses new payments with a
       retryable 503; every function sees it within ``flag_cache_seconds`` (the target's).
    2. Wait until ``region``'s payment queue is empty and replication to the peer has caught up
       (a marker written after the drain arrives), within ``bound_seconds``: by default ten
       times the recent maximum replication latency, at least 30 s.
    3. Take ``region`` out of service: its health fails and Route 53 moves clients to the peer.

    If replication does not catch up within the bound the switchover is abandoned: ``region``
    takes payments again and nothing has moved.
    """
    peer = peer_of(target, region)
    peer_code, peer_body = health_of(target, peer)
    if peer_code != 200:
        raise RefusedError(
            f"{peer} is not healthy ({peer_body.get('failing', peer_code)}): nowhere to move to"
        )
    before = flag_of(target, region)
    if not before.in_service:
        raise RefusedError(f"{region} is already out of service: use failback to return it first")
    if bound_seconds is None:
        recent = _replication_latency(target, region, peer)
        bound_seconds = max(MIN_SWITCHOVER_WAIT_SECONDS, REPLICATION_SAFETY_FACTOR * (recent or 0.0) / 1000)
    who = actor(target, region)
    started = time.monotonic()
    set_flag(
        target,
        region,
        RegionFlag(
            in_service=True, accepting=False, changed_by=who, reason=f"draining: {reason}", changed_at=_now()
        ),
    )
    time.sleep(target.flag_cache_seconds if flag_cache_seconds is None else flag_cache_seconds)
    drained = time.monotonic() - started
    deadline = started + drained + bound_seconds
    try:
        queue_started = time.monotonic()
        _wait_for_empty_queue(target, region, deadline)
        queue_seconds = time.monotonic() - queue_started
        replication = replication_caught_up(
            target, source=region, destination=peer, timeout=max(1.0, deadline - time.monotonic())
        )
    except RefusedError as error:
        set_flag(
            target,
            region,
            before._replace(changed_by=who, reason=f"switchover abandoned: {error}", changed_at=_now()),
        )
        raise RefusedError(f"switchover abandoned, {region} takes payments again: {error}") from error
    set_flag(
        target,
        region,
        RegionFlag(
            in_service=False,
            accepting=False,
            changed_by=who,
            reason=f"switched over to {peer}: {reason}",
            changed_at=_now(),
        ),
    )
    return SwitchoverReport(
        from_region=region,
        to_region=peer,
        drain_seconds=drained,
        queue_seconds=queue_seconds,
        replication_seconds=replication,
        bound_seconds=bound_seconds,
        total_seconds=time.monotonic() - started,
    )


def _wait_for_empty_queue(target: Target, region: str, deadline: float) -> None:
    """Until the payments ``region`` accepted through /validate are all processed there."""
    while True:
        if _depth(target, region, target.names.payment_queue, in_flight=True) == 0:
            return
        if time.monotonic() > deadline:
            raise RefusedError(f"{region}'s payment queue is not empty")
        time.sleep(QUEUE_POLL_SECONDS)


def canary_state(target: Target, region: str) -> tuple[str, float | None]:
    """The state of the peer's canary alarm on ``region`` and for how many seconds it has held."""
    peer = peer_of(target, region)
    alarms = (
        target.client("cloudwatch", peer)
        .describe_alarms(AlarmNames=[target.names.canary_alarm(region)])
        .get("MetricAlarms", [])
    )
    if not alarms:
        return "MISSING", None
    since = alarms[0].get("StateUpdatedTimestamp")
    held = time.time() - since.timestamp() if since is not None else None
    return str(alarms[0]["StateValue"]), held


def _canary_text(state: str, held: float | None) -> str:
    return state if held is None else f"{state} for {held:.0f} s"


def _canary_has_passed(target: Target, region: str, peer: str, seconds: float) -> None:
    state, held = canary_state(target, region)
    name = target.names.canary_alarm(region)
    if state == "MISSING":
        raise RefusedError(f"{peer} has no canary alarm on {region} ({name}): deploy the observer first")
    if state == "ALARM" or (seconds > 0 and state != "OK"):
        raise RefusedError(
            f"the canary {peer} runs against {region} is {state} ({name}): payments there fail"
        )
    if seconds > 0 and (held or 0.0) < seconds:
        raise RefusedError(
            f"the canary against {region} has passed for {held or 0:.0f} s; failback needs {seconds:.0f} s"
        )


def replication_caught_up(
    target: Target, *, source: str, destination: str, timeout: float = FAILBACK_MARKER_TIMEOUT_SECONDS
) -> float:
    """Write a marker in ``source``'s table and wait until ``destination`` has it; returns seconds."""
    nonce = uuid.uuid4().hex
    key = {Schema.PARTITION_KEY: {"S": target.names.replication_marker_key}, Schema.SORT_KEY: {"N": "1"}}
    table = target.names.payments_table
    started = time.monotonic()
    target.client("dynamodb", source).put_item(TableName=table, Item={**key, "nonce": {"S": nonce}})
    reader = target.client("dynamodb", destination)
    while time.monotonic() - started < timeout:
        item = reader.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
        if item and item.get("nonce", {}).get("S") == nonce:
            return time.monotonic() - started
        time.sleep(0.2)
    raise RefusedError(f"replication {source} -> {destination} has not caught up in {timeout:.0f} s")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
