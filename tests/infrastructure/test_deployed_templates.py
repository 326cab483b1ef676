"""The stacks as CloudFormation deploys them (SAM expanded): wiring, account-global names, cfn-lint.

Each check here has a planted-bad twin that breaks one edge of a copy of the real deployment
and expects the check to name it: a check that could not fail would prove nothing.
"""

from __future__ import annotations

import copy
import fnmatch
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import cx_api
from cfnlint.api import lint_all

from chalicelib.names import API_STAGE, HEALTH_PATH, PAYMENT_NOTIFIER, PAYMENT_QUEUE, WEBHOOK_QUEUE
from tests.infrastructure.cloudformation import Deployment
from tests.infrastructure.conftest import deployment_of, synthesize_assembly
from tests.infrastructure.wiring import Wiring, account_global_collisions

REGIONAL = ("PaymentsDevPrimary", "PaymentsDevSecondary")


def logical_id(
    deployment: Deployment, stack: str, kind: str, predicate: Callable[[dict[str, Any]], bool]
) -> str:
    [found] = [
        r.logical_id for r in deployment.resources(kind) if r.stack == stack and predicate(r.properties)
    ]
    return found


def resources_of(deployment: Deployment, stack: str) -> dict[str, dict[str, Any]]:
    return deployment.stacks[stack].template["Resources"]


def named(name: str) -> Callable[[dict[str, Any]], bool]:
    return lambda props: json.dumps(props.get("FunctionName", props.get("TopicName", ""))).find(name) >= 0


# ---------------------------------------------------------------------------- wiring
def test_every_service_edge_is_allowed_by_the_resource_it_reaches(deployment: Deployment) -> None:
    assert Wiring(deployment).all_problems() == []


def _drop_alarm_allow(d: Deployment) -> None:
    for body in resources_of(d, "PaymentsDevPrimary").values():
        if body["Type"] == "AWS::SNS::TopicPolicy":
            statements = body["Properties"]["PolicyDocument"]["Statement"]
            statements[:] = [s for s in statements if "cloudwatch" not in json.dumps(s.get("Principal"))]


def _drop_cloudwatch_from_key(d: Deployment) -> None:
    for body in resources_of(d, "PaymentsDevKeyPrimary").values():
        if body["Type"] == "AWS::KMS::Key":
            statements = body["Properties"]["KeyPolicy"]["Statement"]
            statements[:] = [s for s in statements if "cloudwatch" not in json.dumps(s.get("Principal"))]


def _drop_mapping_dependency(d: Deployment) -> None:
    function = logical_id(d, "PaymentsDevPrimary", "AWS::Lambda::Function", named("payment-processor-"))
    resources_of(d, "PaymentsDevPrimary")[function].pop("DependsOn")


def _drop_receive_grant(d: Deployment) -> None:
    for body in resources_of(d, "PaymentsDevSecondary").values():
        if body["Type"] == "AWS::IAM::Policy":
            for statement in body["Properties"]["PolicyDocument"]["Statement"]:
                actions = (
                    statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                )
                statement["Action"] = [a for a in actions if a != "sqs:ReceiveMessage"] or ["sqs:GetQueueUrl"]


def _drop_sns_invoke_permission(d: Deployment) -> None:
    stack = resources_of(d, "PaymentsDevPrimary")
    [permission] = [
        k
        for k, v in stack.items()
        if v["Type"] == "AWS::Lambda::Permission" and v["Properties"].get("Principal") == "sns.amazonaws.com"
    ]
    del stack[permission]


def _subscribe_a_queue_without_a_policy(d: Deployment) -> None:
    stack = resources_of(d, "PaymentsDevPrimary")
    topic = logical_id(d, "PaymentsDevPrimary", "AWS::SNS::Topic", named("transactions-"))
    stack["AuditQueue"] = {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "audit"}}
    stack["AuditSubscription"] = {
        "Type": "AWS::SNS::Subscription",
        "Properties": {
            "Protocol": "sqs",
            "TopicArn": {"Ref": topic},
            "Endpoint": {"Fn::GetAtt": ["AuditQueue", "Arn"]},
        },
    }


def _point_the_notifier_at_another_table(d: Deployment) -> None:
    for body in resources_of(d, "PaymentsDevSecondary").values():
        if body["Type"] == "Custom::AWS":
            body["Properties"]["Create"] = json.dumps(
                {
                    "service": "DynamoDB",
                    "action": "describeTable",
                    "parameters": {"TableName": "payments-other"},
                }
            )


def _drop_the_notifier_dlq_grant(d: Deployment) -> None:
    for body in resources_of(d, "PaymentsDevPrimary").values():
        if body["Type"] == "AWS::IAM::Policy":
            statements = body["Properties"]["PolicyDocument"]["Statement"]
            statements[:] = [
                s
                for s in statements
                if "payment-notification-dlq" not in json.dumps(s) and "NotificationDLQ" not in json.dumps(s)
            ]


def _encrypt_a_log_group_with_a_key_logs_cannot_use(d: Deployment) -> None:
    for body in resources_of(d, "PaymentsDevKeyPrimary").values():
        if body["Type"] == "AWS::KMS::Key":
            statements = body["Properties"]["KeyPolicy"]["Statement"]
            statements[:] = [s for s in statements if "logs." not in json.dumps(s.get("Principal"))]


PLANTED = {
    "topic policy without CloudWatch": (
        _drop_alarm_allow,
        "does not allow cloudwatch.amazonaws.com to publish",
    ),
    "key policy without CloudWatch": (_drop_cloudwatch_from_key, "key policy"),
    "mapping before its role policy": (_drop_mapping_dependency, "does not depend on"),
    "role without ReceiveMessage": (_drop_receive_grant, "does not allow sqs:ReceiveMessage"),
    "SNS without invoke permission": (_drop_sns_invoke_permission, "no lambda:InvokeFunction permission"),
    "SNS to a queue without policy": (_subscribe_a_queue_without_a_policy, "queue policy does not allow sns"),
    "stream of a table not deployed": (_point_the_notifier_at_another_table, "no table with a stream"),
    "on-failure destination not writable": (_drop_the_notifier_dlq_grant, "does not allow sqs:SendMessage"),
    "log group key without CloudWatch Logs": (_encrypt_a_log_group_with_a_key_logs_cannot_use, "log group"),
}


@pytest.mark.parametrize("case", PLANTED)
def test_the_wiring_check_names_a_planted_broken_edge(deployment: Deployment, case: str) -> None:
    # GIVEN the real deployment with one edge broken
    plant, expected = PLANTED[case]
    broken = copy.deepcopy(deployment)
    plant(broken)

    # WHEN the wiring is checked, THEN the broken edge is named
    problems = Wiring(broken).all_problems()
    assert any(expected in problem for problem in problems), problems


@pytest.mark.parametrize("stack", REGIONAL)
def test_each_region_notifier_reads_its_own_payments_table_stream(deployment: Deployment, stack: str) -> None:
    wiring = Wiring(deployment)
    sources = []
    for mapping in deployment.resources("AWS::Lambda::EventSourceMapping"):
        function = wiring.function(mapping.stack, mapping.properties["FunctionName"])
        if (
            mapping.stack == stack
            and function is not None
            and "payment-notifier-dev" in json.dumps(function.properties)
        ):
            sources.append(str(deployment.render(stack, mapping.properties["EventSourceArn"])))

    [source] = sources
    assert source.split(":")[3] == deployment.region(stack)
    assert wiring.stream_table(stack, source) == "payments-dev"


PYTHON_VERSION_FILE = Path(__file__).resolve().parents[2] / ".python-version"


@pytest.mark.parametrize("stack", REGIONAL)
def test_every_python_function_runs_the_projects_python_on_arm64(deployment: Deployment, stack: str) -> None:
    functions = [
        f
        for f in deployment.resources("AWS::Lambda::Function")
        if f.stack == stack and str(f.properties.get("Runtime", "")).startswith("python")
    ]
    # Chalice packages for the interpreter that synthesizes: the one .python-version selects.
    major, minor = PYTHON_VERSION_FILE.read_text().strip().split(".")[:2]

    assert len(functions) == 6  # API, processor, notifier, orchestrator, canary, webhook deliverer
    assert {(f.properties["Runtime"], tuple(f.properties.get("Architectures", []))) for f in functions} == {
        (f"python{major}.{minor}", ("arm64",))
    }
    assert (major, minor) == ("3", "13")


# What each function does to the payments table, by the code path that does it: a grant missing
# here fails only in AWS, on the first request that takes the path.
PAYMENTS_TABLE_CALLS = [
    (
        "payment-validator-dev",
        "dynamodb:Query",
        "table",
        "GET /payments/{id}: the claim and rejections in one query",
    ),
    ("payment-validator-dev", "dynamodb:Query", "index/customer-index", "GET /customers/{id}/payments"),
    ("payment-validator-dev", "dynamodb:PutItem", "table", "POST /process: the claim, then the record"),
    ("payment-processor-dev", "dynamodb:PutItem", "table", "a payment's claim and record, and a rejection"),
    (
        "payment-processor-dev",
        "dynamodb:GetItem",
        "table",
        "a rejection already recorded for a redelivered message",
    ),
    ("payment-webhooks-dev", "dynamodb:Query", "index/events-index", "a webhook replay's page of events"),
    ("payment-webhooks-dev", "dynamodb:BatchGetItem", "table", "the items of a replay's page"),
]


@pytest.mark.parametrize("stack", REGIONAL)
@pytest.mark.parametrize(("function_name", "action", "part", "why"), PAYMENTS_TABLE_CALLS)
def test_each_function_may_make_the_table_calls_its_code_makes(
    deployment: Deployment, stack: str, function_name: str, action: str, part: str, why: str
) -> None:
    wiring = Wiring(deployment)
    function = wiring.function(stack, function_name)
    assert function is not None
    region = deployment.region(stack)
    table = f"arn:aws:dynamodb:{region}:{deployment.account}:table/payments-dev"
    resource = table if part == "table" else f"{table}/{part}"

    assert wiring.role_allows(wiring.role_of(function), action, resource), why


@pytest.mark.parametrize("stack", REGIONAL)
def test_the_api_function_may_read_its_regions_client_directory_and_nothing_may_write_it(
    deployment: Deployment, stack: str
) -> None:
    wiring = Wiring(deployment)
    region = deployment.region(stack)
    directory = f"arn:aws:dynamodb:{region}:{deployment.account}:table/payment-clients-dev"
    validator = wiring.function(stack, "payment-validator-dev")
    assert validator is not None

    # Every request's client is read there: without it every payment route answers 503.
    assert wiring.role_allows(wiring.role_of(validator), "dynamodb:GetItem", directory)
    for name in ("payment-validator-dev", "payment-processor-dev", "payment-notifier-dev"):
        function = wiring.function(stack, name)
        assert function is not None
        assert not wiring.role_allows(wiring.role_of(function), "dynamodb:PutItem", directory), name


@pytest.mark.parametrize("stack", REGIONAL)
def test_the_canary_may_delete_only_the_canarys_own_payments(deployment: Deployment, stack: str) -> None:
    wiring = Wiring(deployment)
    region = deployment.region(stack)
    table = f"arn:aws:dynamodb:{region}:{deployment.account}:table/payments-dev"
    canary = wiring.function(stack, "payment-canary-dev")
    assert canary is not None
    statements = [
        statement
        for _, found in wiring.role_policies(wiring.role_of(canary))
        for statement in found
        if "dynamodb:DeleteItem" in json.dumps(statement.get("Action"))
    ]

    assert wiring.role_allows(wiring.role_of(canary), "dynamodb:Query", f"{table}/index/customer-index")
    assert len(statements) == 1 and statements[0]["Resource"] in (table, [table])
    assert statements[0]["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["canary#*"]}}


# ---------------------------------------------------------------------------- account-global names
@pytest.fixture(scope="module")
def second_environment(tmp_path_factory: pytest.TempPathFactory) -> cx_api.CloudAssembly:
    """The same app for a second environment suffix, as a second team in the account would deploy it."""
    return synthesize_assembly(tmp_path_factory.mktemp("staging"), environment_suffix="staging")


def test_no_account_global_name_is_claimed_twice_by_the_two_regions(deployment: Deployment) -> None:
    assert account_global_collisions(deployment) == []


def test_two_environments_in_one_account_claim_no_name_or_setting_twice(
    deployment: Deployment, second_environment: cx_api.CloudAssembly
) -> None:
    # Stacks shared by every environment (same name, same template) are deployed once.
    both = Deployment({**deployment.stacks, **deployment_of(second_environment).stacks})

    assert account_global_collisions(both) == []


def test_the_global_name_check_names_a_dashboard_both_regions_claim(deployment: Deployment) -> None:
    broken = copy.deepcopy(deployment)
    for stack in REGIONAL:
        for body in resources_of(broken, stack).values():
            if body["Type"] == "AWS::CloudWatch::Dashboard":
                body["Properties"]["DashboardName"] = "payment-dr-dev"

    assert account_global_collisions(broken) == [
        "AWS::CloudWatch::Dashboard payment-dr-dev: "
        + ", ".join(
            f"{s}/{logical_id(broken, s, 'AWS::CloudWatch::Dashboard', lambda p: True)}" for s in REGIONAL
        )
    ]


def test_the_global_name_check_names_an_api_gateway_account_setting_owned_twice(
    deployment: Deployment,
) -> None:
    broken = copy.deepcopy(deployment)
    resources_of(broken, "PaymentsDevPrimary")["ApiGatewayAccount"] = {
        "Type": "AWS::ApiGateway::Account",
        "Properties": {"CloudWatchRoleArn": "arn:aws:iam::123456789012:role/x"},
    }

    assert any("AWS::ApiGateway::Account us-east-1" in c for c in account_global_collisions(broken))


def test_account_level_api_gateway_settings_are_retained_when_their_stack_goes(
    deployment: Deployment,
) -> None:
    owners = [r for r in deployment.resources("AWS::ApiGateway::Account")]

    assert {deployment.region(r.stack) for r in owners} == {"us-east-1", "us-east-2"}
    for owner in owners:
        body = resources_of(deployment, owner.stack)[owner.logical_id]
        role = resources_of(deployment, owner.stack)[body["Properties"]["CloudWatchRoleArn"]["Fn::GetAtt"][0]]
        assert "dev" not in owner.stack.lower()
        assert body["DeletionPolicy"] == role["DeletionPolicy"] == "Retain"


# ---------------------------------------------------------------------------- what SAM generates
@pytest.mark.parametrize("stack", REGIONAL)
def test_the_api_is_served_only_by_the_guarded_prod_stage(deployment: Deployment, stack: str) -> None:
    stages = [r for r in deployment.resources("AWS::ApiGateway::Stage") if r.stack == stack]
    deployments = [r for r in deployment.resources("AWS::ApiGateway::Deployment") if r.stack == stack]

    assert [s.properties["StageName"] for s in stages] == ["prod"]
    assert all("StageName" not in d.properties for d in deployments)  # SAM's implicit "Stage"


@pytest.mark.parametrize("stack", REGIONAL)
def test_the_processor_pollers_are_capped_so_throttling_cannot_dead_letter(
    deployment: Deployment, stack: str
) -> None:
    caps = {
        str(deployment.render(stack, m.properties["EventSourceArn"])).rsplit(":", 1)[-1]: m.properties.get(
            "ScalingConfig"
        )
        for m in deployment.resources("AWS::Lambda::EventSourceMapping")
        if m.stack == stack and ":sqs:" in str(deployment.render(stack, m.properties["EventSourceArn"]))
    }

    # The webhook deliverer's too: a merchant's slow endpoint holds a few executions at most.
    assert caps == {
        "payment-queue-dev": {"MaximumConcurrency": 20},
        "payment-webhook-deliveries-dev": {"MaximumConcurrency": WEBHOOK_QUEUE.max_concurrency},
    }


@pytest.mark.parametrize("stack", REGIONAL)
def test_both_event_sources_wait_a_second_to_fill_their_batches(deployment: Deployment, stack: str) -> None:
    mappings = [
        m
        for m in deployment.resources("AWS::Lambda::EventSourceMapping")
        if m.stack == stack and "webhook" not in str(deployment.render(stack, m.properties["EventSourceArn"]))
    ]
    windows = {
        "sqs"
        if ":sqs:" in str(deployment.render(stack, m.properties["EventSourceArn"]))
        else "stream": m.properties.get("MaximumBatchingWindowInSeconds", 0)
        for m in mappings
    }

    assert windows == {
        "sqs": PAYMENT_QUEUE.processor_batching_window_seconds,
        "stream": PAYMENT_NOTIFIER.batching_window_seconds,
    }
    assert all(w >= 1 for w in windows.values())


@pytest.mark.parametrize("stack", REGIONAL)
def test_route_53_health_requests_are_never_traced(deployment: Deployment, stack: str) -> None:
    [rule] = [
        r.properties["SamplingRule"]
        for r in deployment.resources("AWS::XRay::SamplingRule")
        if r.stack == stack
    ]
    # The path Route 53's checkers call (stacks/dns.py) and the path the API serves it on.
    health_paths = [f"/{API_STAGE}{HEALTH_PATH}", HEALTH_PATH]

    assert (rule["ReservoirSize"], rule["FixedRate"]) == (0, 0)
    assert all(fnmatch.fnmatchcase(path, rule["URLPath"]) for path in health_paths)
    assert not fnmatch.fnmatchcase(f"/{API_STAGE}/validate", rule["URLPath"])


@pytest.mark.parametrize("stack", REGIONAL)
def test_payment_logs_are_encrypted_with_the_regions_key(deployment: Deployment, stack: str) -> None:
    groups = [g for g in deployment.resources("AWS::Logs::LogGroup") if g.stack == stack]

    assert len(groups) == 8  # six functions, the access log and the execution log
    for group in groups:
        key = deployment.find_key(stack, group.properties["KmsKeyId"])
        assert key is not None and deployment.region(key.stack) == deployment.region(stack)


# ---------------------------------------------------------------------------- cfn-lint
def lint_errors(template: dict[str, Any]) -> list[str]:
    return [str(m) for m in lint_all(json.dumps(template)) if m.rule.id.startswith("E")]


@pytest.mark.parametrize("stack", REGIONAL)
def test_expanded_templates_have_no_cfn_lint_errors(deployment: Deployment, stack: str) -> None:
    template = deployment.stacks[stack].template

    assert "Transform" not in template and not any(
        r["Type"].startswith("AWS::Serverless::") for r in template["Resources"].values()
    )
    assert lint_errors(template) == []


def test_cfn_lint_on_the_expanded_template_catches_what_only_expansion_shows(deployment: Deployment) -> None:
    # An event source mapping exists only after expansion; a batch size SQS cannot serve.
    template = copy.deepcopy(deployment.stacks["PaymentsDevPrimary"].template)
    for body in template["Resources"].values():
        if body["Type"] == "AWS::Lambda::EventSourceMapping":
            body["Properties"]["BatchSize"] = 0

    assert lint_errors(template)


def test_synthesis_writes_the_templates_these_tests_expand(assembly: cx_api.CloudAssembly) -> None:
    for stack in REGIONAL:
        written = json.loads(Path(assembly.directory, f"{stack}.template.json").read_text())
        assert written["Transform"] == "AWS::Serverless-2016-10-31"


def test_make_e2e_deploys_every_stack_after_the_stacks_it_depends_on(assembly: cx_api.CloudAssembly) -> None:
    from e2e.deploy import stacks_in_deploy_order

    order = [s.name for s in stacks_in_deploy_order(Path(assembly.directory))]

    assert sorted(order) == sorted(s.stack_name for s in assembly.stacks)
    for stack in assembly.stacks:
        for dependency in stack.dependencies:
            if isinstance(dependency, cx_api.CloudFormationStackArtifact):
                assert order.index(dependency.stack_name) < order.index(stack.stack_name)
    assert order.index("PaymentsDevPrimary") < order.index("PaymentsDevSecondary")
