"""The canary alarm the local environment evaluates is the one the stacks deploy.

``localenv.canary.CanaryAlarm`` stands in for CloudWatch under ``make run`` and the drill;
``chalicelib.canary.canary_alarm_definition`` is what each stack creates in its peer. Both read
``chalicelib.failover_numbers``; this checks that, for any run of probe results, the local alarm
is in the state CloudWatch would give the deployed definition.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.canary import canary_alarm_definition
from chalicelib.names import ResourceNames
from localenv import canary as local_canary
from localenv.canary import CanaryAlarm

COMPARE = {"LessThanThreshold": lambda value, threshold: value < threshold}


def cloudwatch_state(definition: dict[str, Any], datapoints: list[float]) -> str:
    """CloudWatch's M-of-N evaluation of ``definition`` over one datapoint per period (none missing)."""
    if not datapoints:
        return "INSUFFICIENT_DATA"
    breaching = COMPARE[definition["ComparisonOperator"]]
    window = datapoints[-definition["EvaluationPeriods"] :]
    failing = sum(1 for value in window if breaching(value, definition["Threshold"]))
    return "ALARM" if failing >= definition["DatapointsToAlarm"] else "OK"


class _Recorder:
    def __getattr__(self, _name: str) -> Any:
        return lambda **_kwargs: {}


def local_states(probes: list[bool]) -> list[str]:
    alarm = CanaryAlarm(
        _Recorder(), _Recorder(), alarm_name="a", topic_arn="t", region="us-east-2", target="us-east-1"
    )
    return [alarm.record(passed) for passed in probes]


def deployed_states(probes: list[bool]) -> list[str]:
    definition = canary_alarm_definition(ResourceNames("dev"), "us-east-1", [])
    # One probe a minute, the alarm's period: each period's Minimum is that probe's 1 or 0.
    values = [1.0 if passed else 0.0 for passed in probes]
    return [cloudwatch_state(definition, values[: n + 1]) for n in range(len(values))]


@given(st.lists(st.booleans(), min_size=1, max_size=12))
def test_for_any_run_of_probes_the_local_alarm_is_in_the_deployed_alarms_state(probes: list[bool]) -> None:
    assert local_states(probes) == deployed_states(probes)


def test_a_local_alarm_that_drifted_from_the_numbers_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    drifted = local_canary.CANARY._replace(datapoints_to_alarm=3)
    monkeypatch.setattr(local_canary, "CANARY", drifted)
    probes = [True, False, False]

    assert local_states(probes) != deployed_states(probes)
