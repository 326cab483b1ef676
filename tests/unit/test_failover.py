"""Parsing alarm notifications and the failover decision."""

from __future__ import annotations

import json

import pytest

from chalicelib.failover import FailoverAction, NotAnAlarm, decide, parse_alarm_notification, trigger_alarms
from chalicelib.names import ResourceNames

NAMES = ResourceNames("test")


def alarm_message(name: str = NAMES.api_5xx_alarm, state: str = "ALARM", region: str = "us-east-2") -> str:
    return json.dumps(
        {
            "AlarmName": name,
            "NewStateValue": state,
            "OldStateValue": "OK",
            "NewStateReason": "Threshold Crossed",
            "Region": "US East (Ohio)",
            "AlarmArn": f"arn:aws:cloudwatch:{region}:123456789012:alarm:{name}",
        }
    )


def test_region_comes_from_the_alarm_arn_not_the_display_name() -> None:
    alarm = parse_alarm_notification(alarm_message(region="us-east-2"))

    assert alarm.region == "us-east-2"
    assert alarm.new_state == "ALARM"


@pytest.mark.parametrize(
    "message",
    [
        "not json",
        "[]",
        json.dumps({"AlarmName": "x"}),
        json.dumps({"AlarmName": "x", "NewStateValue": "ALARM"}),
    ],
)
def test_messages_that_are_not_alarms_are_refused(message: str) -> None:
    with pytest.raises(NotAnAlarm):
        parse_alarm_notification(message)


@pytest.mark.parametrize("name", sorted(trigger_alarms(NAMES)))
def test_a_critical_alarm_takes_its_region_out_of_service(name: str) -> None:
    decision = decide(parse_alarm_notification(alarm_message(name)), triggers=trigger_alarms(NAMES))

    assert decision.action is FailoverAction.TAKE_REGION_OUT_OF_SERVICE
    assert decision.region == "us-east-2"


@pytest.mark.parametrize(
    ("name", "state"),
    [
        (NAMES.api_5xx_alarm, "OK"),
        (NAMES.api_5xx_alarm, "INSUFFICIENT_DATA"),
        ("someone-elses-alarm", "ALARM"),
    ],
)
def test_recovery_and_unrelated_alarms_change_nothing(name: str, state: str) -> None:
    decision = decide(parse_alarm_notification(alarm_message(name, state)), triggers=trigger_alarms(NAMES))

    assert decision.action is FailoverAction.NONE
