"""Models of Route 53's records, the checks they follow, and the alarms the drill sends.

Route 53 is not in the local environment: the drill asks these models when DNS would have moved a
client that holds a domain rather than both regional endpoints.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from chalicelib.canary import canary_dimensions
from chalicelib.failover_numbers import HEALTH_CHECK_FAILURE_THRESHOLD
from chalicelib.metrics import METRICS_NAMESPACE, Metric
from chalicelib.names import Topology
from localenv.canary import alarm_notification
from localenv.environment import LocalEnvironment
from operations import regions
from operations.targets import Target


class EndpointCheck:
    """Route 53's endpoint check on ``/health``: 3 consecutive results change its state."""

    def __init__(self) -> None:
        self.healthy = True
        self._streak = 0

    def observe(self, passing: bool) -> bool:
        """Count one result and return the check's state after it."""
        if passing == self.healthy:
            self._streak = 0
        else:
            self._streak += 1
            if self._streak >= HEALTH_CHECK_FAILURE_THRESHOLD:
                self.healthy, self._streak = passing, 0
        return self.healthy


class Route53LikeRouter:
    """The failover record: primary while its calculated health check is healthy, else secondary.

    The calculated check is healthy only while both children are: the endpoint check on
    ``/health`` (3 consecutive results change its state) and the alarm on the peer's canary.
    """

    def __init__(self, target: Target, interval: float, canary_alarm: Callable[[], str]) -> None:
        self._target = target
        self._interval = interval
        self._canary_alarm = canary_alarm
        self._endpoint = EndpointCheck()
        self.alarm_state = "OK"
        self.primary_healthy = True
        self.first_failed_check_at: float | None = None
        self.decided_at: float | None = None
        self.decided_by = ""
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
            endpoint_healthy = self._endpoint.observe(passing)
            self.alarm_state = self._canary_alarm()
            healthy = endpoint_healthy and self.alarm_state != "ALARM"
            if self.primary_healthy and not healthy and self.decided_at is None:
                self.decided_at = time.time()
                self.decided_by = "the canary alarm" if self.alarm_state == "ALARM" else "the /health check"
            self.primary_healthy = healthy

    def region(self) -> str:
        return self._target.primary_region if self.primary_healthy else self._target.secondary_region


class Route53Model:
    """Route 53's answer for the domain: each region's calculated check, and the routing policy.

    A region's check is healthy while both children are: the endpoint check on its ``/health``
    (3 consecutive results change its state) and the alarm on the peer's canary against it.
    """

    def __init__(self, target: Target, interval: float, topology: Topology) -> None:
        self._target = target
        self._interval = interval
        self.topology = topology
        self.healthy = dict.fromkeys(target.regions, True)
        self._endpoints = {region: EndpointCheck() for region in target.regions}
        self.unhealthy_at: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            for region in self._target.regions:
                passing = regions.health_of(self._target, region)[0] == 200
                endpoint_healthy = self._endpoints[region].observe(passing)
                alarm = regions.canary_state(self._target, region)[0]
                healthy = endpoint_healthy and alarm != "ALARM"
                if self.healthy[region] and not healthy:
                    self.unhealthy_at.setdefault(region, time.time())
                self.healthy[region] = healthy

    def answer(self, nearest: str) -> str:
        """The region Route 53 answers with for a client whose lowest-latency region is ``nearest``."""
        primary, secondary = self._target.primary_region, self._target.secondary_region
        if self.topology is Topology.ACTIVE_PASSIVE:
            # A failover record: the primary while it is healthy (and when neither is).
            return secondary if not self.healthy[primary] and self.healthy[secondary] else primary
        # Latency records: the nearest healthy region; when none is healthy, all are answered.
        others = [r for r in self._target.regions if r != nearest and self.healthy[r]]
        return nearest if self.healthy[nearest] or not others else others[0]


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
