"""Reading CloudWatch alarm notifications and deciding what a region should do about them.

Pure Python: the orchestrator handler parses the SNS message with
:func:`parse_alarm_notification`, asks :func:`decide` and acts on the decision.
"""

from __future__ import annotations

import enum
import json
from typing import Any, NamedTuple

from chalicelib.names import ResourceNames

ALARM = "ALARM"
OK = "OK"
INSUFFICIENT_DATA = "INSUFFICIENT_DATA"
_STATES = frozenset({ALARM, OK, INSUFFICIENT_DATA})


def trigger_alarms(names: ResourceNames) -> frozenset[str]:
    """Alarms whose ALARM state means the region is impaired: the orchestrator takes it out.

    Only signals no client can raise by what it sends: 5XX answers, function errors and
    throttled table requests (their rules: ``failover_numbers.API_5XX``, ``LAMBDA_ERRORS``,
    ``DYNAMODB_THROTTLES``). The dead-letter queue alarm is not one of them: what reaches it is a
    message infrastructure failed to process, which pages people (on the same topic) but says
    nothing about whether the region can take payments, and it must never move traffic. Nor is
    replication latency (see ``stacks.monitoring.PaymentMonitoring``).
    """
    return frozenset({names.api_5xx_alarm, names.lambda_errors_alarm, names.dynamodb_throttles_alarm})


def paging_alarms(names: ResourceNames) -> frozenset[str]:
    """Alarms that page operators without moving traffic."""
    return frozenset(
        {
            names.dlq_messages_alarm,
            names.notification_dlq_alarm,
            names.announce_failed_alarm,
            names.replication_latency_alarm,
            names.misconfiguration_alarm,
            names.control_failures_alarm,
            names.webhook_dlq_alarm,
            names.webhook_backlog_alarm,
        }
    )


class NotAnAlarm(ValueError):
    """The SNS message is not a CloudWatch alarm state change."""


class AlarmNotification(NamedTuple):
    """The parts of a CloudWatch alarm notification that matter for failover."""

    alarm_name: str
    new_state: str
    region: str
    reason: str


class FailoverAction(enum.Enum):
    """What the orchestrator should do about an alarm."""

    NONE = "none"
    TAKE_REGION_OUT_OF_SERVICE = "take_region_out_of_service"
    # The alarm calls for failover but the peer region is not in service either.
    REFUSE_LAST_REGION = "refuse_to_take_out_the_last_region"


class FailoverDecision(NamedTuple):
    """An action, the region it applies to and why."""

    action: FailoverAction
    region: str
    reason: str


def parse_alarm_notification(message: str) -> AlarmNotification:
    """Parse the ``Message`` of an SNS notification sent by a CloudWatch alarm.

    The region is read from the alarm ARN (``arn:aws:cloudwatch:REGION:...``) because the
    notification's ``Region`` field holds a display name such as "US East (N. Virginia)".
    """
    try:
        body: Any = json.loads(message)
    except (TypeError, ValueError) as error:
        raise NotAnAlarm("message is not JSON") from error
    if not isinstance(body, dict):
        raise NotAnAlarm("message is not a JSON object")
    name, state, arn = body.get("AlarmName"), body.get("NewStateValue"), body.get("AlarmArn")
    if not isinstance(name, str) or state not in _STATES:
        raise NotAnAlarm("message has no AlarmName or NewStateValue")
    arn_parts = arn.split(":") if isinstance(arn, str) else []
    if len(arn_parts) < 4 or arn_parts[2] != "cloudwatch" or not arn_parts[3]:
        raise NotAnAlarm("message has no CloudWatch AlarmArn")
    reason = body.get("NewStateReason")
    return AlarmNotification(
        alarm_name=name,
        new_state=state,
        region=arn_parts[3],
        reason=reason if isinstance(reason, str) else "",
    )


def decide(
    alarm: AlarmNotification,
    *,
    triggers: frozenset[str],
    peer_canary_alarm: str = "",
    peer_region: str = "",
) -> FailoverDecision:
    """Decide what to do about ``alarm``.

    Only a critical alarm of this region, or the canary alarm on the peer (this region observes
    its peer), entering ALARM moves a region out of service: this one, or the peer. Route 53 has
    already moved clients away from a peer whose canary alarm is in ALARM; taking the peer out
    of service as well keeps them away once its canary passes again, so that returning it stays
    an operator's decision. Recovery (OK) never fails back by itself.
    """
    if peer_canary_alarm and alarm.alarm_name == peer_canary_alarm:
        if alarm.new_state != ALARM:
            return FailoverDecision(
                FailoverAction.NONE, peer_region, f"alarm is {alarm.new_state}; failback is manual"
            )
        return FailoverDecision(
            FailoverAction.TAKE_REGION_OUT_OF_SERVICE,
            peer_region,
            f"{alarm.alarm_name} is in ALARM: {peer_region} fails its payments as {alarm.region} sees them",
        )
    if alarm.alarm_name not in triggers:
        return FailoverDecision(FailoverAction.NONE, alarm.region, "alarm is not critical")
    if alarm.new_state != ALARM:
        return FailoverDecision(
            FailoverAction.NONE, alarm.region, f"alarm is {alarm.new_state}; failback is manual"
        )
    return FailoverDecision(
        FailoverAction.TAKE_REGION_OUT_OF_SERVICE, alarm.region, f"{alarm.alarm_name} is in ALARM"
    )


def guard_last_region(decision: FailoverDecision, *, peer_in_service: bool) -> FailoverDecision:
    """Never take the last region in service out: a degraded region beats no region at all."""
    if decision.action is FailoverAction.TAKE_REGION_OUT_OF_SERVICE and not peer_in_service:
        return FailoverDecision(
            FailoverAction.REFUSE_LAST_REGION,
            decision.region,
            f"{decision.reason}, but the peer region is not in service: staying in service",
        )
    return decision
