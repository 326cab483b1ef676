"""Local stand-in for CloudWatch around the canary: its metric, its alarm and the alarm's actions.

The event runner of each region runs the canary handler against the peer's local API every few
seconds (Lambda's schedule runs it every minute) and hands each result to :class:`CanaryAlarm`,
which does what CloudWatch does with the alarm on the handler's embedded metric (the metric
itself reaches the local CloudWatch through :mod:`localenv.metric_logs`, so the drill can see when
the first probe failed): it evaluates the alarm from one data point per period (ALARM when ``datapoints_to_alarm`` of the last ``evaluation_periods`` failed, OK
otherwise) and, when the state changes, publishes the alarm notification to the region's
ops-alert topic, where the failover orchestrator reads it. The drill's router and
``payments-dr failback`` read the alarm's state as Route 53 and the operator would.
"""

from __future__ import annotations

import json
import time
from collections import deque
from typing import Any

from chalicelib.failover_numbers import CANARY


class CanaryAlarm:
    """The canary against one region, as CloudWatch in the observer's region keeps it."""

    def __init__(
        self, cloudwatch: Any, sns: Any, *, alarm_name: str, topic_arn: str, region: str, target: str
    ) -> None:
        self._cloudwatch = cloudwatch
        self._sns = sns
        self._alarm_name = alarm_name
        self._topic_arn = topic_arn
        self._region = region
        self._target = target
        self._recent: deque[bool] = deque(maxlen=CANARY.evaluation_periods)
        self.state = "INSUFFICIENT_DATA"

    def record(self, success: bool) -> str:
        """Add one probe's result; returns the alarm's state."""
        self._recent.append(success)
        failures = sum(1 for passed in self._recent if not passed)
        state = "ALARM" if failures >= CANARY.datapoints_to_alarm else "OK"
        if state != self.state:
            reason = f"{failures} of the last {len(self._recent)} canary probes failed"
            self._cloudwatch.set_alarm_state(
                AlarmName=self._alarm_name,
                StateValue=state,
                StateReason=reason,
                StateReasonData=json.dumps({"failures": failures}),
            )
            self._notify(state, reason)
            self.state = state
        return state

    def _notify(self, state: str, reason: str) -> None:
        message = alarm_notification(
            self._alarm_name, self._region, state, old_state=self.state, reason=reason
        )
        self._sns.publish(TopicArn=self._topic_arn, Message=message)


def alarm_notification(alarm_name: str, region: str, state: str, *, old_state: str, reason: str) -> str:
    """What CloudWatch publishes to an alarm's actions (the ops-alert topic) when its state changes."""
    return json.dumps(
        {
            "AlarmName": alarm_name,
            "NewStateValue": state,
            "OldStateValue": old_state,
            "NewStateReason": reason,
            "StateChangeTime": time.strftime("%Y-%m-%dT%H:%M:%S.000+0000", time.gmtime()),
            "AlarmArn": f"arn:aws:cloudwatch:{region}:000000000000:alarm:{alarm_name}",
        }
    )
