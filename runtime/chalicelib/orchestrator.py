"""The failover orchestrator's use case: act on a CloudWatch alarm published to the ops-alert topic."""

from __future__ import annotations

import time

from chalicelib.errors import (
    DependencyUnavailable,
    PaymentError,
)
from chalicelib.failover import (
    FailoverAction,
    FailoverDecision,
    NotAnAlarm,
    decide,
    guard_last_region,
    parse_alarm_notification,
    trigger_alarms,
)
from chalicelib.observability import (
    Metric,
    count,
    logger,
    report_dependency_failure,
)
from chalicelib.regions import RegionFlag
from chalicelib.services import Services


def handle_ops_alert(message: str, services: Services, *, now: str | None = None) -> FailoverDecision | None:
    """The failover orchestrator: act on a critical alarm of this region or the canary alarm on its peer.

    In ALARM, either takes its region out of service (its health check then fails and Route 53
    sends clients to the other region), unless the other region is not in service either: the
    last region stays. What was done is published on the ops-alert topic and counted.
    """
    try:
        alarm = parse_alarm_notification(message)
    except NotAnAlarm as error:
        logger.info("ignoring ops message that is not a CloudWatch alarm", extra={"reason": str(error)})
        return None
    settings = services.settings
    decision = decide(
        alarm,
        triggers=trigger_alarms(settings.names),
        peer_canary_alarm=settings.names.canary_alarm(settings.peer_region) if settings.peer_region else "",
        peer_region=settings.peer_region,
    )
    if decision.action is FailoverAction.TAKE_REGION_OUT_OF_SERVICE:
        count(Metric.FAILOVER_SIGNAL)
        # The region that would stay: the peer when this one goes, this one when the peer goes.
        staying = settings.peer_region if decision.region == settings.region else settings.region
        decision = guard_last_region(decision, peer_in_service=_in_service(services, staying))
    if decision.action is FailoverAction.TAKE_REGION_OUT_OF_SERVICE:
        flag = RegionFlag(
            in_service=False,
            changed_by="failover-orchestrator",
            reason=decision.reason,
            changed_at=now or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )
        try:
            services.region_control.set_flag(decision.region, flag)
        except DependencyUnavailable as error:
            if decision.region == settings.region:
                raise
            # The peer's own Parameter Store is failing too: Route 53 has moved clients already;
            # only the latch that keeps them away once its canary passes again is missing. Not
            # an error of this region's orchestrator (its errors are a failover trigger here).
            report_dependency_failure(error, f"in-service flag of {decision.region}")
            logger.error(
                "could not take the failing peer out of service", extra={"peer_region": decision.region}
            )
            return decision
        services.health_cache.clear()
        count(Metric.FAILOVER_EXECUTED)
        services.ops_notices.announce(
            f"Payments: {decision.region} taken out of service",
            {
                "event": "region.out_of_service",
                "region": decision.region,
                "reason": decision.reason,
                "alarm": alarm.alarm_name,
                "changed_at": flag.changed_at,
            },
        )
    elif decision.action is FailoverAction.REFUSE_LAST_REGION:
        count(Metric.FAILOVER_REFUSED)
        logger.error("failover refused: the peer region is not in service", extra={"region": decision.region})
    logger.info(
        "failover decision",
        extra={
            "alarm": alarm.alarm_name,
            "state": alarm.new_state,
            "alarm_region": alarm.region,
            "action": decision.action.value,
            "reason": decision.reason,
        },
    )
    return decision


def _in_service(services: Services, region: str) -> bool:
    """Whether ``region`` is in service; unknown counts as not (so we never go dark)."""
    if not region:
        return False
    try:
        return services.region_control.flag(region).in_service
    except PaymentError:
        logger.warning("a region's flag cannot be read", extra={"flag_region": region})
        return False
