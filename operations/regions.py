"""Status, failover and failback of the two regions: what ``payments-dr`` does to them.

Failover sets a region's in-service flag off (its health check then fails and Route 53 moves
clients to the peer). Failback is deliberate: it refuses unless the peer is healthy, the region
itself is healthy apart from its flag, and replication has caught up (a marker written in the
peer arrives in the region); then it sets the flag on, recording who and why.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import requests

from chalicelib.aws import SsmRegionControl
from chalicelib.names import PaymentsTableSchema as Schema
from chalicelib.regions import RegionFlag
from operations.targets import Target

HEALTH_TIMEOUT_SECONDS = 5
MARKER_TIMEOUT_SECONDS = 60
REPLICATION_WINDOW_SECONDS = 300


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
    try:
        response = requests.get(
            target.api_url(region).rstrip("/") + "/health", timeout=HEALTH_TIMEOUT_SECONDS
        )
        return response.status_code, response.json()
    except (requests.RequestException, ValueError) as error:
        return 0, {"failing": f"unreachable: {type(error).__name__}"}


def actor(target: Target, region: str) -> str:
    """Who is acting: the caller's IAM identity."""
    return str(target.client("sts", region).get_caller_identity()["Arn"])


def _depth(target: Target, region: str, queue: str) -> int:
    sqs = target.client("sqs", region)
    attributes = sqs.get_queue_attributes(
        QueueUrl=target.queue_url(region, queue), AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def _alarms_in_alarm(target: Target, region: str) -> list[str]:
    names = sorted(target.names.critical_alarms | target.names.paging_alarms)
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


def peer_of(target: Target, region: str) -> str:
    if region not in target.regions:
        raise RefusedError(f"{region} is not one of this deployment's regions {target.regions}")
    return next(r for r in target.regions if r != region)


def status(target: Target) -> list[RegionStatus]:
    """Both regions: flag, health, alarms, replication latency, queue and DLQ depth."""
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
            )
        )
    return rows


def render_status(rows: list[RegionStatus]) -> str:
    header = ("region", "in service", "health", "alarms", "replication", "queue", "DLQ", "flag set by / why")
    lines = [header]
    for row in rows:
        latency = (
            f"{row.replication_latency_ms:.0f} ms" if row.replication_latency_ms is not None else "no data"
        )
        lines.append(
            (
                row.region,
                "yes" if row.in_service else "NO",
                row.health,
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


def failback(target: Target, region: str, *, reason: str) -> tuple[RegionFlag, float]:
    """Return ``region`` to service after the checks; returns the flag and the replication lag (s)."""
    peer = peer_of(target, region)
    peer_code, peer_body = health_of(target, peer)
    if peer_code != 200:
        raise RefusedError(f"{peer} is not healthy ({peer_body.get('failing', peer_code)}): fix it first")
    code, body = health_of(target, region)
    if code != 200 and body.get("failing") != "in-service flag":
        raise RefusedError(f"{region} is not healthy apart from its flag ({body.get('failing', code)})")
    lag = replication_caught_up(target, source=peer, destination=region)
    flag = RegionFlag(in_service=True, changed_by=actor(target, region), reason=reason, changed_at=_now())
    set_flag(target, region, flag)
    return flag, lag


def replication_caught_up(target: Target, *, source: str, destination: str) -> float:
    """Write a marker in ``source``'s table and wait until ``destination`` has it; returns seconds."""
    nonce = uuid.uuid4().hex
    key = {Schema.PARTITION_KEY: {"S": target.names.replication_marker_key}, Schema.SORT_KEY: {"N": "1"}}
    table = target.names.payments_table
    started = time.monotonic()
    target.client("dynamodb", source).put_item(TableName=table, Item={**key, "nonce": {"S": nonce}})
    reader = target.client("dynamodb", destination)
    while time.monotonic() - started < MARKER_TIMEOUT_SECONDS:
        item = reader.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
        if item and item.get("nonce", {}).get("S") == nonce:
            return time.monotonic() - started
        time.sleep(0.2)
    raise RefusedError(
        f"replication {source} -> {destination} has not caught up in {MARKER_TIMEOUT_SECONDS} s"
    )


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
