"""The control plane as CloudFormation deploys it: the orchestrator and the canary keep executions
of their own, and an invocation they fail on every attempt reaches a queue whose alarm pages.

Each check is a function over the SAM-expanded deployment, run on the real one (no findings) and
on a planted-bad copy (the finding it exists for).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

import chalicelib.canary as canary_module
import chalicelib.failover_numbers as failover_numbers_module
from chalicelib.failover_numbers import CANARY, canary_alarm_digest
from chalicelib.names import Handler, ResourceNames
from stacks.functions import FUNCTIONS
from tests.infrastructure.cloudformation import Deployment
from tests.infrastructure.conftest import synthesize
from tests.infrastructure.wiring import Wiring

NAMES = ResourceNames("dev")
REGIONAL = ("PaymentsDevPrimary", "PaymentsDevSecondary")
CONTROL = {
    NAMES.orchestrator_function: Handler.FAILOVER_ORCHESTRATOR,
    NAMES.canary_function: Handler.PAYMENT_CANARY,
}


def concurrency_problems(deployment: Deployment) -> list[str]:
    """Control functions without the reserved concurrency their settings give them."""
    found = []
    for stack in REGIONAL:
        for name, handler in CONTROL.items():
            function = Wiring(deployment).function(stack, name)
            reserved = function.properties.get("ReservedConcurrentExecutions") if function else None
            wanted = FUNCTIONS[handler].reserved_concurrency
            if function is None or wanted is None or reserved != wanted:
                found.append(f"{stack}/{name}: reserved concurrency {reserved}, wanted {wanted}")
    return found


def destination_problems(deployment: Deployment) -> list[str]:
    """Control functions whose failed asynchronous invocations would be dropped or go unnoticed."""
    found = []
    wiring = Wiring(deployment)
    for stack in REGIONAL:
        queue = next(
            (
                q
                for q in deployment.resources("AWS::SQS::Queue")
                if q.stack == stack and q.properties.get("QueueName") == NAMES.control_failures_queue
            ),
            None,
        )
        queue_arn = deployment.arn_of(queue) if queue else None
        alarmed = queue is not None and any(
            alarm.stack == stack
            and alarm.properties.get("Dimensions")
            == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue.logical_id, "QueueName"]}}]
            and alarm.properties.get("AlarmActions")
            for alarm in deployment.resources("AWS::CloudWatch::Alarm")
        )
        if queue_arn is None or not alarmed:
            found.append(f"{stack}: no control-failures queue with an alarm that notifies")
        for name in CONTROL:
            function = wiring.function(stack, name)
            configs = [
                c
                for c in deployment.resources("AWS::Lambda::EventInvokeConfig")
                if c.stack == stack
                and function is not None
                and deployment.render(stack, c.properties["FunctionName"])
                == deployment.render(stack, {"Ref": function.logical_id})
            ]
            destination = (
                deployment.render(stack, configs[0].properties.get("DestinationConfig", {}))
                .get("OnFailure", {})
                .get("Destination")
                if configs
                else None
            )
            if destination is None or destination != queue_arn:
                found.append(f"{stack}/{name}: on failure -> {destination}")
    return found + wiring.destinations()


def test_the_orchestrator_and_the_canary_have_executions_of_their_own(deployment: Deployment) -> None:
    assert concurrency_problems(deployment) == []


def test_a_control_function_sharing_the_accounts_pool_is_caught(deployment: Deployment) -> None:
    bad = copy.deepcopy(deployment)
    for stack in REGIONAL:
        for body in bad.stacks[stack].template["Resources"].values():
            if body["Type"] == "AWS::Lambda::Function":
                body["Properties"].pop("ReservedConcurrentExecutions", None)

    assert len(concurrency_problems(bad)) == 2 * len(CONTROL)


def test_a_failed_alarm_notification_or_canary_run_reaches_a_queue_that_pages(deployment: Deployment) -> None:
    assert destination_problems(deployment) == []


def test_a_control_function_whose_failures_are_dropped_is_caught(deployment: Deployment) -> None:
    bad = copy.deepcopy(deployment)
    for stack in REGIONAL:
        for body in bad.stacks[stack].template["Resources"].values():
            if body["Type"] == "AWS::Lambda::EventInvokeConfig":
                body["Properties"].pop("DestinationConfig", None)

    assert len(destination_problems(bad)) >= 2 * len(CONTROL)


def execution_log_problems(deployment: Deployment) -> list[str]:
    """Stages whose execution log group API Gateway would create itself: no key, no retention."""
    found = []
    for stack in REGIONAL:
        groups = [
            g
            for g in deployment.resources("AWS::Logs::LogGroup")
            if g.stack == stack
            and g.properties.get("LogGroupName")
            == {"Fn::Join": ["", ["API-Gateway-Execution-Logs_", {"Ref": "RestAPI"}, "/prod"]]}
        ]
        if len(groups) != 1:
            found.append(f"{stack}: {len(groups)} execution log groups for the stage")
            continue
        body = deployment.stacks[stack].template["Resources"][groups[0].logical_id]
        if "KmsKeyId" not in groups[0].properties or groups[0].properties.get("RetentionInDays") != 7:
            found.append(f"{stack}: the execution log group has no key or no one-week retention")
        if body.get("DeletionPolicy") != "Delete":
            found.append(f"{stack}: the execution log group outlives the stack")
    return found


def test_the_stack_creates_the_apis_execution_log_group_with_its_key_and_retention(
    deployment: Deployment,
) -> None:
    assert execution_log_problems(deployment) == []


def test_an_execution_log_group_left_to_api_gateway_is_caught(deployment: Deployment) -> None:
    bad = copy.deepcopy(deployment)
    for stack in REGIONAL:
        resources = bad.stacks[stack].template["Resources"]
        for logical_id in [k for k, b in resources.items() if "ExecutionLogs" in k]:
            del resources[logical_id]

    assert len(execution_log_problems(bad)) == 2


def cloudwatch_key_problems(deployment: Deployment) -> list[str]:
    """Key policy statements that let CloudWatch use a payment key for any account's alarms."""
    found = []
    for key in deployment.resources("AWS::KMS::Key"):
        for statement in key.properties["KeyPolicy"]["Statement"]:
            if statement.get("Principal", {}).get("Service") != "cloudwatch.amazonaws.com":
                continue
            condition = deployment.render(key.stack, statement.get("Condition", {}))
            if condition.get("StringEquals", {}).get("aws:SourceAccount") != deployment.account:
                found.append(f"{key.stack}/{key.logical_id}: CloudWatch may use the key for any account")
    return found


def test_cloudwatch_may_use_the_keys_only_for_this_accounts_alarms(deployment: Deployment) -> None:
    cloudwatch_statements = [
        s
        for key in deployment.resources("AWS::KMS::Key")
        for s in key.properties["KeyPolicy"]["Statement"]
        if s.get("Principal", {}).get("Service") == "cloudwatch.amazonaws.com"
    ]

    assert len(cloudwatch_statements) == 2  # one key per region
    assert cloudwatch_key_problems(deployment) == []


def test_a_key_that_cloudwatch_may_use_for_any_account_is_caught(deployment: Deployment) -> None:
    bad = copy.deepcopy(deployment)
    for stack in bad.stacks.values():
        for body in stack.template.get("Resources", {}).values():
            if body["Type"] == "AWS::KMS::Key":
                for statement in body["Properties"]["KeyPolicy"]["Statement"]:
                    statement.pop("Condition", None) if statement.get("Principal", {}).get(
                        "Service"
                    ) == "cloudwatch.amazonaws.com" else None

    assert len(cloudwatch_key_problems(bad)) == 2


def flag_ownership_problems(deployment: Deployment) -> list[str]:
    """Ways a deploy could write a region's in-service flag (and so undo an operator or the orchestrator)."""
    found = []
    for stack in REGIONAL:
        resources = deployment.stacks[stack].template["Resources"]
        for logical_id, body in resources.items():
            if (
                body["Type"] == "AWS::SSM::Parameter"
                and body["Properties"].get("Name") == NAMES.in_service_parameter
            ):
                found.append(f"{stack}/{logical_id}: CloudFormation owns the flag's value")
        flags = [
            body["Properties"]
            for body in resources.values()
            if body["Type"] == "Custom::AWS" and NAMES.in_service_parameter in json.dumps(body["Properties"])
        ]
        if len(flags) != 1:
            found.append(f"{stack}: {len(flags)} resources create the flag")
            continue
        if "Update" in flags[0]:
            found.append(f"{stack}: an update of the stack writes the flag")
        create = json.loads(deployment.render(stack, flags[0]["Create"]))
        if create.get("action") != "putParameter" or create["parameters"].get("Overwrite") is not False:
            found.append(f"{stack}: creating the stack may overwrite an existing flag")
    return found


def test_a_deploy_never_writes_a_regions_in_service_flag(deployment: Deployment) -> None:
    assert flag_ownership_problems(deployment) == []


def test_a_flag_a_deploy_would_rewrite_is_caught(deployment: Deployment) -> None:
    bad = copy.deepcopy(deployment)
    for stack in REGIONAL:
        for body in bad.stacks[stack].template["Resources"].values():
            if body["Type"] == "Custom::AWS" and NAMES.in_service_parameter in json.dumps(body["Properties"]):
                body["Properties"]["Update"] = body["Properties"]["Create"]

    assert len(flag_ownership_problems(bad)) == 2


def _joined(value: Any) -> str:
    """A custom resource's JSON property with every reference replaced by a placeholder."""
    if isinstance(value, dict) and "Fn::Join" in value:
        return "".join(part if isinstance(part, str) else "REF" for part in value["Fn::Join"][1])
    return str(value)


def health_check_alarm_problems(templates: dict[str, dict[str, Any]], digest: str) -> list[str]:
    """Canary health checks that do not read the alarm as this synthesis defines it (``digest``)."""
    found = []
    for stack, template in templates.items():
        resources = template.get("Resources", {})
        checks = {
            logical_id: body["Properties"]["HealthCheckConfig"]["AlarmIdentifier"]["Name"]
            for logical_id, body in resources.items()
            if body["Type"] == "AWS::Route53::HealthCheck"
            and body["Properties"]["HealthCheckConfig"]["Type"] == "CLOUDWATCH_METRIC"
        }
        alarms = {
            json.loads(_joined(body["Properties"]["Create"]))["parameters"]["AlarmName"]
            for body in resources.values()
            if body["Type"] == "Custom::AWS" and "putMetricAlarm" in json.dumps(body["Properties"])
        }
        if not checks:
            found.append(f"{stack}: no health check reads the canary alarm")
        for logical_id, alarm_name in checks.items():
            if alarm_name not in alarms or not alarm_name.endswith(digest) or digest not in logical_id:
                found.append(f"{stack}/{logical_id}: reads {alarm_name}, the stack defines {sorted(alarms)}")
    return found


def synthesized_with_a_domain(outdir: Path) -> dict[str, dict[str, Any]]:
    templates = synthesize(
        outdir, domain_name="pay.example.com", hosted_zone_id="Z123EXAMPLE", hosted_zone_name="example.com"
    )
    return {name: dict(t.to_json()) for name, t in templates.items() if name in REGIONAL}


def canary_checks(templates: dict[str, dict[str, Any]]) -> set[str]:
    return {
        f"{stack}/{logical_id}"
        for stack, template in templates.items()
        for logical_id, body in template["Resources"].items()
        if body["Type"] == "AWS::Route53::HealthCheck"
        and "AlarmIdentifier" in body["Properties"]["HealthCheckConfig"]
    }


def test_the_health_check_reads_the_canary_alarm_as_deployed_and_a_changed_alarm_makes_a_new_check(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = synthesized_with_a_domain(tmp_path_factory.mktemp("alarm-before"))
    deployed = canary_alarm_digest()
    changed = CANARY._replace(datapoints_to_alarm=3)  # 3 failed probes of 3, not 2
    for module in (failover_numbers_module, canary_module):
        monkeypatch.setattr(module, "CANARY", changed)

    after = synthesized_with_a_domain(tmp_path_factory.mktemp("alarm-after"))

    assert canary_alarm_digest(changed) != deployed
    assert health_check_alarm_problems(before, deployed) == []
    assert health_check_alarm_problems(after, canary_alarm_digest(changed)) == []
    # Every check that reads the alarm is a new one, so Route 53 copies the new definition.
    assert canary_checks(before).isdisjoint(canary_checks(after))


def test_a_health_check_left_on_an_old_alarm_definition_is_caught(tmp_path: Path) -> None:
    bad = synthesized_with_a_domain(tmp_path)
    for template in bad.values():
        for body in template["Resources"].values():
            config = (
                body["Properties"].get("HealthCheckConfig", {})
                if body["Type"] == "AWS::Route53::HealthCheck"
                else {}
            )
            if "AlarmIdentifier" in config:
                identifier = config["AlarmIdentifier"]
                identifier["Name"] = (
                    identifier["Name"].rsplit("-", 1)[0] + "-0ld0ld00"
                )  # an earlier definition

    assert len(health_check_alarm_problems(bad, canary_alarm_digest())) == 2
