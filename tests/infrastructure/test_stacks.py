"""Every figure of the specification, asserted on both synthesized regional stacks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from chalicelib.canary import canary_alarm_definition
from chalicelib.failover import paging_alarms, trigger_alarms
from chalicelib.items import announced_items_filter
from chalicelib.metrics import METRICS_NAMESPACE, Metric
from chalicelib.names import (
    DEFAULT_PRIMARY_REGION,
    DEFAULT_SECONDARY_REGION,
    SERVICE_NAME,
    Handler,
    ResourceNames,
)
from stacks.functions import FUNCTIONS
from tests.infrastructure.conftest import synthesize

PRIMARY, SECONDARY = "PaymentsDevPrimary", "PaymentsDevSecondary"
BOTH = [PRIMARY, SECONDARY]
NAMES = ResourceNames("dev")
FUNCTION_NAMES = {
    Handler.API: NAMES.validator_function,
    Handler.PAYMENT_PROCESSOR: NAMES.processor_function,
    Handler.PAYMENT_NOTIFIER: NAMES.notifier_function,
    Handler.FAILOVER_ORCHESTRATOR: NAMES.orchestrator_function,
    Handler.PAYMENT_CANARY: NAMES.canary_function,
    Handler.WEBHOOK_DELIVERER: NAMES.webhook_function,
}


def resources(template: Template, kind: str) -> dict[str, Any]:
    return dict(template.find_resources(kind))


def function(template: Template, handler: str) -> dict[str, Any]:
    [found] = [
        r
        for r in resources(template, "AWS::Serverless::Function").values()
        if r["Properties"]["FunctionName"] == FUNCTION_NAMES[handler]
    ]
    return found


def test_the_primary_owns_the_global_table_with_a_replica_in_the_secondary(
    templates: dict[str, Template],
) -> None:
    template = templates[PRIMARY]

    template.has_resource(
        "AWS::DynamoDB::GlobalTable",
        {
            "DeletionPolicy": "Delete",
            "Properties": {
                "TableName": "payments-dev",
                "BillingMode": "PAY_PER_REQUEST",
                "KeySchema": [
                    {"AttributeName": "transaction_id", "KeyType": "HASH"},
                    {"AttributeName": "timestamp", "KeyType": "RANGE"},
                ],
                "AttributeDefinitions": Match.array_with(
                    [
                        {"AttributeName": "transaction_id", "AttributeType": "S"},
                        {"AttributeName": "timestamp", "AttributeType": "N"},
                        {"AttributeName": "customer_id", "AttributeType": "S"},
                        {"AttributeName": "events_of", "AttributeType": "S"},
                        {"AttributeName": "event_time", "AttributeType": "N"},
                    ]
                ),
                "StreamSpecification": {"StreamViewType": "NEW_AND_OLD_IMAGES"},
                "GlobalSecondaryIndexes": [
                    {
                        "IndexName": "customer-index",
                        "KeySchema": [
                            {"AttributeName": "customer_id", "KeyType": "HASH"},
                            {"AttributeName": "timestamp", "KeyType": "RANGE"},
                        ],
                        "Projection": {"ProjectionType": "ALL"},
                    },
                    # A client's events by when they were stored: a webhook replay's pages.
                    {
                        "IndexName": "events-index",
                        "KeySchema": [
                            {"AttributeName": "events_of", "KeyType": "HASH"},
                            {"AttributeName": "event_time", "KeyType": "RANGE"},
                        ],
                        "Projection": {"ProjectionType": "KEYS_ONLY"},
                    },
                ],
            },
        },
    )
    replicated = [NAMES.payments_table, NAMES.idempotency_table]
    for table in resources(template, "AWS::DynamoDB::GlobalTable").values():
        if table["Properties"]["TableName"] not in replicated:
            continue
        replicas = {r["Region"]: r for r in table["Properties"]["Replicas"]}
        assert set(replicas) == {"us-east-1", "us-east-2"}
        assert all(
            r["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] for r in replicas.values()
        )


def test_idempotency_keys_live_in_their_own_global_table_with_ttl(templates: dict[str, Template]) -> None:
    templates[PRIMARY].has_resource_properties(
        "AWS::DynamoDB::GlobalTable",
        {
            "TableName": NAMES.idempotency_table,
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "TimeToLiveSpecification": {"AttributeName": "expiration", "Enabled": True},
        },
    )


def test_webhook_endpoints_live_in_both_regions_each_replica_under_its_regions_key(
    templates: dict[str, Template],
) -> None:
    """Either region serves and delivers a client's endpoints; their secrets are encrypted at rest
    under the key of the region holding them, and only the API function and the webhook deliverer
    read or write them."""
    [table] = [
        t
        for t in resources(templates[PRIMARY], "AWS::DynamoDB::GlobalTable").values()
        if t["Properties"]["TableName"] == NAMES.webhook_endpoints_table
    ]
    replicas = {r["Region"]: r for r in table["Properties"]["Replicas"]}
    grants = {
        (stack, logical_id): json.dumps(policy["Properties"]["PolicyDocument"])
        for stack in BOTH
        for logical_id, policy in resources(templates[stack], "AWS::IAM::Policy").items()
        if "WebhookEndpointsTable" in json.dumps(policy["Properties"]["PolicyDocument"])
        or NAMES.webhook_endpoints_table in json.dumps(policy["Properties"]["PolicyDocument"])
    }

    assert table["Properties"]["KeySchema"] == [
        {"AttributeName": "client", "KeyType": "HASH"},
        {"AttributeName": "endpoint_id", "KeyType": "RANGE"},
    ]
    assert set(replicas) == {"us-east-1", "us-east-2"}
    assert table["Properties"]["SSESpecification"] == {"SSEEnabled": True, "SSEType": "KMS"}
    assert all("KMSMasterKeyId" in r["SSESpecification"] for r in replicas.values())
    assert all(r["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] for r in replicas.values())
    # Two API functions (one a region) hold the grant; no other role does.
    roles = sorted({logical_id.split("Role")[0] for _, logical_id in grants})
    assert sorted(stack for stack, _ in grants) == sorted([*BOTH, *BOTH])
    assert roles == ["ApiAPIHandler", "ApiDeliverWebhooks"], sorted(grants)


def test_the_secondary_uses_the_replica_and_creates_no_table(templates: dict[str, Template]) -> None:
    template = templates[SECONDARY]

    # Only its own client directory (see the test below).
    tables = resources(template, "AWS::DynamoDB::GlobalTable").values()
    assert [table["Properties"]["TableName"] for table in tables] == [NAMES.clients_table]
    assert resources(template, "AWS::DynamoDB::Table") == {}
    functions = json.dumps(resources(template, "AWS::Serverless::Function"))
    assert "payments-dev" in functions


@pytest.mark.parametrize("stack", BOTH)
def test_each_region_has_its_own_client_directory_holding_the_canarys_key(
    templates: dict[str, Template], stack: str
) -> None:
    template = templates[stack]
    [(directory_id, directory)] = [
        (logical_id, table)
        for logical_id, table in resources(template, "AWS::DynamoDB::GlobalTable").items()
        if table["Properties"]["TableName"] == NAMES.clients_table
    ]
    [replica] = directory["Properties"]["Replicas"]

    assert directory["Properties"]["KeySchema"] == [{"AttributeName": "api_key_id", "KeyType": "HASH"}]
    assert replica["Region"] == {PRIMARY: "us-east-1", SECONDARY: "us-east-2"}[stack]
    assert replica["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert "KMSMasterKeyId" in replica["SSESpecification"]
    [key_id] = resources(template, "AWS::ApiGateway::ApiKey")
    entries = [
        json.dumps(entry["Properties"]["Create"])
        for entry in resources(template, "Custom::AWS").values()
        if "putItem" in json.dumps(entry["Properties"].get("Create", ""))
    ]
    assert len(entries) == 1 and key_id in entries[0] and json.dumps({"Ref": directory_id}) in entries[0]


@pytest.mark.parametrize("stack", BOTH)
def test_queue_and_dead_letter_queue(templates: dict[str, Template], stack: str) -> None:
    template = templates[stack]

    template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "QueueName": "payment-queue-dev",
            "VisibilityTimeout": 300,
            "KmsMasterKeyId": Match.any_value(),
            "RedrivePolicy": {"deadLetterTargetArn": Match.any_value(), "maxReceiveCount": 3},
        },
    )
    template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "QueueName": "payment-dlq-dev",
            "MessageRetentionPeriod": 14 * 86400,
            "KmsMasterKeyId": Match.any_value(),
        },
    )
    policies = json.dumps(resources(template, "AWS::SQS::QueuePolicy"))
    assert "aws:SecureTransport" in policies


@pytest.mark.parametrize("stack", BOTH)
def test_two_topics_and_the_orchestrator_subscribed_to_ops_alerts(
    templates: dict[str, Template], stack: str
) -> None:
    template = templates[stack]
    topics = {
        r["Properties"]["TopicName"]: logical for logical, r in resources(template, "AWS::SNS::Topic").items()
    }

    assert set(topics) == {"ops-alerts-dev", "transactions-dev"}
    orchestrator = function(template, Handler.FAILOVER_ORCHESTRATOR)
    [event] = orchestrator["Properties"]["Events"].values()
    assert event == {"Type": "SNS", "Properties": {"Topic": {"Ref": topics["ops-alerts-dev"]}}}


@pytest.mark.parametrize("stack", BOTH)
@pytest.mark.parametrize(
    ("handler", "memory", "timeout"),
    [
        (Handler.API, 512, 30),
        (Handler.PAYMENT_PROCESSOR, 1024, 60),
        (Handler.PAYMENT_NOTIFIER, 256, 60),
        (Handler.FAILOVER_ORCHESTRATOR, 256, 60),
    ],
)
def test_functions_are_sized_as_the_spec_says(
    templates: dict[str, Template], stack: str, handler: str, memory: int, timeout: int
) -> None:
    properties = function(templates[stack], handler)["Properties"]

    assert (properties["MemorySize"], properties["Timeout"]) == (memory, timeout)
    assert properties["EventInvokeConfig"]["MaximumRetryAttempts"] == 2
    # Only the control plane's failures go to a destination (tests/infrastructure/test_control_plane.py).
    assert ("DestinationConfig" in properties["EventInvokeConfig"]) == FUNCTIONS[
        handler
    ].on_failure_destination
    assert properties["Tracing"] == "Active"
    assert FUNCTIONS[handler].memory_mb == memory


@pytest.mark.parametrize("stack", BOTH)
def test_the_processor_reads_its_queue_in_batches_of_ten_with_partial_failures(
    templates: dict[str, Template], stack: str
) -> None:
    template = templates[stack]
    [queue] = [
        k
        for k, r in resources(template, "AWS::SQS::Queue").items()
        if r["Properties"]["QueueName"] == "payment-queue-dev"
    ]

    [event] = function(template, Handler.PAYMENT_PROCESSOR)["Properties"]["Events"].values()

    assert event["Type"] == "SQS"
    assert event["Properties"]["BatchSize"] == 10
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert event["Properties"]["Queue"] == {"Fn::GetAtt": [queue, "Arn"]}


@pytest.mark.parametrize("stack", BOTH)
def test_the_api_stage_is_throttled_logged_and_traced(templates: dict[str, Template], stack: str) -> None:
    [api] = resources(templates[stack], "AWS::Serverless::Api").values()
    properties = api["Properties"]

    assert properties["Name"] == "payment-api-dev"
    assert properties["StageName"] == "prod"
    assert properties["EndpointConfiguration"] == "REGIONAL"
    assert properties["TracingEnabled"] is True
    assert properties["MethodSettings"] == [
        {
            "ResourcePath": "/*",
            "HttpMethod": "*",
            "ThrottlingRateLimit": 1000,
            "ThrottlingBurstLimit": 2000,
            "LoggingLevel": "INFO",
            "MetricsEnabled": True,
            "DataTraceEnabled": False,
        }
    ]
    assert "DestinationArn" in properties["AccessLogSetting"]


def policy_statements(template: Template, role_logical_id: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for policy in resources(template, "AWS::IAM::Policy").values():
        if {"Ref": role_logical_id} in policy["Properties"]["Roles"]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def actions_of(statements: list[dict[str, Any]]) -> set[str]:
    found: set[str] = set()
    for statement in statements:
        action = statement["Action"]
        found.update([action] if isinstance(action, str) else action)
    return found


@pytest.mark.parametrize("stack", BOTH)
def test_each_function_has_its_own_least_privilege_role(templates: dict[str, Template], stack: str) -> None:
    template = templates[stack]
    role_of = {h: function(template, h)["Properties"]["Role"]["Fn::GetAtt"][0] for h in FUNCTION_NAMES}
    actions = {h: actions_of(policy_statements(template, role)) for h, role in role_of.items()}

    assert len(set(role_of.values())) == 6
    assert "sqs:SendMessage" in actions[Handler.API]
    assert not any(a.startswith("sqs:Receive") or a == "sqs:DeleteMessage" for a in actions[Handler.API])
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage"} <= actions[Handler.PAYMENT_PROCESSOR]
    assert "sqs:SendMessage" not in actions[Handler.PAYMENT_PROCESSOR]
    # The webhook deliverer reads its queue and the endpoints, and writes no payment: it signs what
    # the notifier announced, and a replay's events from the events index (test_deployed_templates).
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:SendMessage"} <= actions[
        Handler.WEBHOOK_DELIVERER
    ]
    assert {a for a in actions[Handler.WEBHOOK_DELIVERER] if a.startswith("dynamodb:")} == {
        "dynamodb:Query",
        "dynamodb:PutItem",
        "dynamodb:BatchGetItem",
    }
    # The orchestrator touches no payment data; it may only put a failed invocation on its
    # on-failure destination.
    assert not any(a.startswith("dynamodb:") for a in actions[Handler.FAILOVER_ORCHESTRATOR])
    assert {a for a in actions[Handler.FAILOVER_ORCHESTRATOR] if a.startswith("sqs:")} == {"sqs:SendMessage"}
    # Only the notifier publishes payments (from the stream), so a retried write cannot publish
    # again, and the observer, what a lost peer stored and never announced (from the table, with
    # the events' own ids); the orchestrator publishes only what it did, on ops-alerts.
    [transactions] = [
        k
        for k, r in resources(template, "AWS::SNS::Topic").items()
        if r["Properties"]["TopicName"] == NAMES.transaction_topic
    ]
    publishers = [
        h
        for h, role in role_of.items()
        for st in policy_statements(template, role)
        if "sns:Publish" in actions_of([st]) and st["Resource"] == {"Ref": transactions}
    ]
    assert sorted(publishers) == sorted([Handler.PAYMENT_NOTIFIER, Handler.PAYMENT_CANARY])
    ssm_writers = [h for h, a in actions.items() if "ssm:PutParameter" in a]
    assert sorted(ssm_writers) == sorted([Handler.FAILOVER_ORCHESTRATOR, Handler.PAYMENT_CANARY])
    # It writes its own region's flag (its alarms) and the peer's (its canary on the peer), no other.
    written = sorted(
        rendered(resource)
        for st in policy_statements(template, role_of[Handler.FAILOVER_ORCHESTRATOR])
        if "ssm:PutParameter" in actions_of([st])
        for resource in (st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]])
    )
    assert written == [
        f"arn:aws:ssm:{region}:REF:parameter{NAMES.in_service_parameter}"
        for region in (DEFAULT_PRIMARY_REGION, DEFAULT_SECONDARY_REGION)
    ]
    # The notifier reads the stream and writes only the records of claims whose request could not.
    assert {
        a
        for a in actions[Handler.PAYMENT_NOTIFIER]
        if a.startswith("dynamodb:")
        and "Stream" not in a
        and a not in ("dynamodb:GetRecords", "dynamodb:GetShardIterator")
    } == {"dynamodb:BatchGetItem", "dynamodb:PutItem"}
    for role in role_of.values():
        for statement in policy_statements(template, role):
            if statement["Resource"] == "*":
                assert set(statement["Action"]) <= {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
            assert "*" not in actions_of([statement])


@pytest.mark.parametrize("stack", BOTH)
def test_function_and_api_logs_are_kept_one_week_and_destroyed_with_the_stack(
    templates: dict[str, Template], stack: str
) -> None:
    groups = resources(templates[stack], "AWS::Logs::LogGroup")
    names = [g["Properties"]["LogGroupName"] for g in groups.values()]

    execution_logs = {"Fn::Join": ["", ["API-Gateway-Execution-Logs_", {"Ref": "RestAPI"}, "/prod"]]}
    assert {f"/aws/lambda/{n}" for n in FUNCTION_NAMES.values()} | {"/aws/apigateway/payment-api-dev"} == {
        n for n in names if isinstance(n, str)
    }
    assert [n for n in names if not isinstance(n, str)] == [execution_logs]
    assert all(
        g["Properties"]["RetentionInDays"] == 7 and g["DeletionPolicy"] == "Delete" for g in groups.values()
    )


@pytest.mark.parametrize("stack", BOTH)
@pytest.mark.parametrize(
    ("alarm_name", "threshold"),
    [
        (NAMES.api_5xx_alarm, 10),
        (NAMES.lambda_errors_alarm, 5),
        (NAMES.dynamodb_throttles_alarm, 10),
        (NAMES.dlq_messages_alarm, 1),
    ],
)
def test_alarms_have_the_spec_thresholds_and_notify_ops_alerts(
    templates: dict[str, Template], stack: str, alarm_name: str, threshold: int
) -> None:
    template = templates[stack]
    [ops_topic] = [
        k
        for k, r in resources(template, "AWS::SNS::Topic").items()
        if r["Properties"]["TopicName"] == "ops-alerts-dev"
    ]

    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": alarm_name,
            "Threshold": threshold,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "AlarmActions": [{"Ref": ops_topic}],
        },
    )
    # The failover triggers and the paging alarms, no other.
    assert len(resources(template, "AWS::CloudWatch::Alarm")) == len(
        trigger_alarms(NAMES) | paging_alarms(NAMES)
    )


@pytest.mark.parametrize("stack", BOTH)
def test_the_dashboard_shows_api_lambda_dynamodb_and_sqs(templates: dict[str, Template], stack: str) -> None:
    [dashboard] = resources(templates[stack], "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])

    region = "us-east-1" if stack == "PaymentsDevPrimary" else "us-east-2"
    assert dashboard["Properties"]["DashboardName"] == f"payment-dr-dev-{region}"
    for title in (
        "API requests",
        "API errors",
        "Lambda invocations",
        "Lambda errors",
        "DynamoDB consumed capacity",
        "Payment queue depth",
        "Dead-letter queue",
    ):
        assert title in body


OUTPUTS = [
    "PaymentsTableName",
    "PaymentsTableArn",
    "PaymentValidatorArn",
    "PaymentProcessorArn",
    "PaymentQueueUrl",
    "PaymentQueueArn",
    "PaymentDLQUrl",
    "APIEndpoint",
    "APIId",
    "OpsAlertTopicArn",
    "TransactionTopicArn",
    "DashboardName",
    "Region",
]


@pytest.mark.parametrize("stack", BOTH)
def test_thirteen_outputs_with_descriptions_and_export_names(
    templates: dict[str, Template], stack: str
) -> None:
    outputs = templates[stack].to_json()["Outputs"]

    assert set(OUTPUTS) <= set(outputs)
    for name in OUTPUTS:
        assert outputs[name]["Description"]
        assert outputs[name]["Export"]["Name"] == f"{stack}-{name}"


def test_without_a_domain_there_are_no_dns_resources(templates: dict[str, Template]) -> None:
    for template in templates.values():
        assert resources(template, "AWS::Route53::RecordSet") == {}
        assert resources(template, "AWS::Route53::HealthCheck") == {}


def test_with_a_domain_each_region_gets_a_failover_record_and_a_health_check(tmp_path: Path) -> None:
    templates = synthesize(
        tmp_path,
        domain_name="pay.example.com",
        hosted_zone_id="Z123EXAMPLE",
        hosted_zone_name="example.com",
        environment_suffix="dns",
    )

    for stack, role in (("PaymentsDnsPrimary", "PRIMARY"), ("PaymentsDnsSecondary", "SECONDARY")):
        template = templates[stack]
        template.has_resource_properties(
            "AWS::Route53::RecordSet",
            {"Name": "pay.example.com", "Type": "A", "Failover": role, "HealthCheckId": Match.any_value()},
        )
        template.has_resource_properties(
            "AWS::Route53::HealthCheck",
            {
                "HealthCheckConfig": Match.object_like(
                    {
                        "Type": "HTTPS",
                        "ResourcePath": "/prod/health",
                        "RequestInterval": 30,
                        "FailureThreshold": 3,
                    }
                )
            },
        )
        assert resources(template, "AWS::Serverless::Api")
        assert "payments-dns" in json.dumps(template.to_json())
    # Route 53's metrics exist in us-east-1 only: the primary's stack there alarms on its check.
    [health_alarm] = [
        a
        for a in resources(templates["PaymentsDnsPrimary"], "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == "HealthCheckStatus"
    ]
    assert health_alarm["Properties"]["AlarmName"] == "payment-health-check-dns-us-east-1"
    assert health_alarm["Properties"]["AlarmActions"]

    # The record follows a calculated check: /health AND the peer's canary alarm on this region.
    for stack, region, peer in (
        ("PaymentsDnsPrimary", DEFAULT_PRIMARY_REGION, DEFAULT_SECONDARY_REGION),
        ("PaymentsDnsSecondary", DEFAULT_SECONDARY_REGION, DEFAULT_PRIMARY_REGION),
    ):
        found = resources(templates[stack], "AWS::Route53::HealthCheck")
        checks = {logical_id: r["Properties"]["HealthCheckConfig"] for logical_id, r in found.items()}
        [record] = resources(templates[stack], "AWS::Route53::RecordSet").values()
        decision_id = record["Properties"]["HealthCheckId"]["Fn::GetAtt"][0]
        decision = checks[decision_id]
        children = {child["Fn::GetAtt"][0] for child in decision["ChildHealthChecks"]}
        [canary_id] = [i for i in children if checks[i]["Type"] == "CLOUDWATCH_METRIC"]

        assert (decision["Type"], decision["HealthThreshold"]) == ("CALCULATED", len(children))
        assert {checks[i]["Type"] for i in children} == {"HTTPS", "CLOUDWATCH_METRIC"}
        assert checks[canary_id]["AlarmIdentifier"] == {
            "Name": ResourceNames("dns").canary_alarm(region),
            "Region": peer,
        }
        assert checks[canary_id]["InsufficientDataHealthStatus"] == "LastKnownStatus"
        # The alarm is created (in the peer region) before Route 53 reads it.
        [creator] = [
            i
            for i, r in resources(templates[stack], "Custom::AWS").items()
            if "putMetricAlarm" in json.dumps(r)
        ]
        assert creator in json.dumps(found[canary_id].get("DependsOn", []))


@pytest.mark.parametrize("stack", BOTH)
def test_the_notifier_reads_only_this_regions_new_payments_from_the_table_stream(
    templates: dict[str, Template], stack: str
) -> None:
    template = templates[stack]
    [event] = function(template, Handler.PAYMENT_NOTIFIER)["Properties"]["Events"].values()
    properties = event["Properties"]
    [dlq] = [
        k
        for k, r in resources(template, "AWS::SQS::Queue").items()
        if r["Properties"]["QueueName"] == NAMES.notification_dlq
    ]
    [pattern] = [json.loads(f["Pattern"]) for f in properties["FilterCriteria"]["Filters"]]
    region = "us-east-1" if stack == PRIMARY else "us-east-2"

    assert event["Type"] == "DynamoDB"
    assert properties["StartingPosition"] == "TRIM_HORIZON"
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert properties["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": [dlq, "Arn"]}
    assert pattern == announced_items_filter(region)
    assert pattern["dynamodb"]["NewImage"]["announced_by"] == {"S": [region]}
    assert "placeholder" not in json.dumps(properties["Stream"])


def test_the_secondary_notifier_reads_its_replicas_stream(templates: dict[str, Template]) -> None:
    [event] = function(templates[SECONDARY], Handler.PAYMENT_NOTIFIER)["Properties"]["Events"].values()
    [lookup] = [
        r for r in resources(templates[SECONDARY], "Custom::AWS").values() if "describeTable" in json.dumps(r)
    ]

    assert event["Properties"]["Stream"]["Fn::GetAtt"][1] == "Table.LatestStreamArn"
    assert "describeTable" in json.dumps(lookup["Properties"]["Create"])


@pytest.mark.parametrize("stack", BOTH)
def test_payment_data_is_encrypted_with_the_regions_customer_managed_key(
    templates: dict[str, Template], stack: str
) -> None:
    template = templates[stack]

    for queue in resources(template, "AWS::SQS::Queue").values():
        assert "Fn::ImportValue" in queue["Properties"]["KmsMasterKeyId"]
        assert "SqsManagedSseEnabled" not in queue["Properties"]
    for topic in resources(template, "AWS::SNS::Topic").values():
        assert "Fn::ImportValue" in json.dumps(topic["Properties"]["KmsMasterKeyId"])
    if stack == PRIMARY:
        template.has_resource_properties(
            "AWS::DynamoDB::GlobalTable",
            {"TableName": NAMES.payments_table, "SSESpecification": {"SSEEnabled": True, "SSEType": "KMS"}},
        )
        for table in resources(template, "AWS::DynamoDB::GlobalTable").values():
            replicas = {
                r["Region"]: r["SSESpecification"]["KMSMasterKeyId"] for r in table["Properties"]["Replicas"]
            }
            assert "Fn::ImportValue" in json.dumps(replicas["us-east-1"])
            if table["Properties"]["TableName"] != NAMES.clients_table:
                assert NAMES.data_key_alias in json.dumps(replicas["us-east-2"])
    for table in resources(template, "AWS::DynamoDB::GlobalTable").values():
        if table["Properties"]["TableName"] == NAMES.clients_table:
            [replica] = table["Properties"]["Replicas"]
            assert "Fn::ImportValue" in json.dumps(replica["SSESpecification"]["KMSMasterKeyId"])


@pytest.mark.parametrize("stack", BOTH)
def test_every_queue_and_topic_refuses_requests_without_tls(
    templates: dict[str, Template], stack: str
) -> None:
    template = templates[stack]
    queue_policies = resources(template, "AWS::SQS::QueuePolicy").values()
    topic_policies = resources(template, "AWS::SNS::TopicPolicy").values()
    protected: set[str] = set()
    for policy in [*queue_policies, *topic_policies]:
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        if any(
            s["Effect"] == "Deny" and "aws:SecureTransport" in json.dumps(s["Condition"]) for s in statements
        ):
            protected.update(
                json.dumps(t) for t in policy["Properties"].get("Queues", policy["Properties"].get("Topics"))
            )

    assert len(protected) == len(resources(template, "AWS::SQS::Queue")) + len(
        resources(template, "AWS::SNS::Topic")
    )


def test_each_region_has_its_key_stack_deployed_before_the_tables(templates: dict[str, Template]) -> None:
    for key_stack in ("PaymentsDevKeyPrimary", "PaymentsDevKeySecondary"):
        [key] = resources(templates[key_stack], "AWS::KMS::Key").values()
        assert key["Properties"]["EnableKeyRotation"] is True
        templates[key_stack].has_resource_properties("AWS::KMS::Alias", {"AliasName": NAMES.data_key_alias})


@pytest.mark.parametrize("stack", BOTH)
def test_payment_routes_need_an_api_key_and_health_does_not(
    templates: dict[str, Template], stack: str
) -> None:
    template = templates[stack]
    [api] = resources(template, "AWS::Serverless::Api").values()
    paths = api["Properties"]["DefinitionBody"]["paths"]
    [plan] = resources(template, "AWS::ApiGateway::UsagePlan").values()

    for path, method in [
        ("/validate", "post"),
        ("/process", "post"),
        ("/payments/{transaction_id}", "get"),
        ("/customers/{customer_id}/payments", "get"),
    ]:
        assert paths[path][method]["security"] == [{"api_key": []}]
    assert "security" not in paths["/health"]["get"]
    assert plan["Properties"]["ApiStages"] == [
        {"ApiId": {"Ref": "RestAPI"}, "Stage": {"Ref": "RestAPI.Stage"}}
    ]
    assert len(resources(template, "AWS::ApiGateway::ApiKey")) == 1
    assert len(resources(template, "AWS::ApiGateway::UsagePlanKey")) == 1


@pytest.mark.parametrize("stack", BOTH)
def test_a_waf_rate_rule_guards_the_api_stage(templates: dict[str, Template], stack: str) -> None:
    template = templates[stack]
    [acl_id] = resources(template, "AWS::WAFv2::WebACL")
    acl = resources(template, "AWS::WAFv2::WebACL")[acl_id]["Properties"]
    [association] = resources(template, "AWS::WAFv2::WebACLAssociation").values()
    [rate] = [r for r in acl["Rules"] if "RateBasedStatement" in r["Statement"]]

    assert acl["Scope"] == "REGIONAL"
    assert rate["Statement"]["RateBasedStatement"]["AggregateKeyType"] == "IP"
    assert "Block" in rate["Action"]
    assert association["Properties"]["WebACLArn"] == {"Fn::GetAtt": [acl_id, "Arn"]}
    assert {"Ref": "RestAPI.Stage"} in association["Properties"]["ResourceArn"]["Fn::Join"][1]


@pytest.mark.parametrize("stack", BOTH)
def test_each_region_has_an_in_service_flag_only_health_and_the_orchestrator_use(
    templates: dict[str, Template], stack: str
) -> None:
    template = templates[stack]
    [flag] = [
        r
        for r in resources(template, "Custom::AWS").values()
        if "putParameter" in json.dumps(r["Properties"])
    ]
    created = json.loads(rendered(flag["Properties"]["Create"]))
    policies = json.dumps(resources(template, "AWS::IAM::Policy"))
    peer = "us-east-2" if stack == PRIMARY else "us-east-1"

    assert created["parameters"]["Name"] == NAMES.in_service_parameter
    assert json.loads(created["parameters"]["Value"])["in_service"] is True
    assert f"ssm:{peer}:" in policies  # the orchestrator reads the peer's flag before acting
    for function_ in resources(template, "AWS::Serverless::Function").values():
        assert function_["Properties"]["Environment"]["Variables"]["PEER_REGION"] == peer


@pytest.mark.parametrize("stack", BOTH)
def test_replication_latency_warns_ops_but_is_not_a_failover_trigger(
    templates: dict[str, Template], stack: str
) -> None:
    [alarm] = [
        a
        for a in resources(templates[stack], "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["AlarmName"] == NAMES.replication_latency_alarm
    ]

    assert alarm["Properties"]["MetricName"] == "ReplicationLatency"
    assert {"Name": "ReceivingRegion", "Value": "us-east-2" if stack == PRIMARY else "us-east-1"} in alarm[
        "Properties"
    ]["Dimensions"]
    assert NAMES.replication_latency_alarm not in trigger_alarms(NAMES)


# What an impaired region shows and no client request can cause: answers of 5XX, functions that
# crash or time out, a table that throttles or fails. The dead-letter queue's depth is not one of them.
IMPAIRMENT_METRICS = {"5XXError", "Errors", "ReadThrottleEvents", "WriteThrottleEvents", "SystemErrors"}


@pytest.mark.parametrize("stack", BOTH)
def test_a_broken_deployment_pages_on_the_functions_own_misconfiguration_count(
    templates: dict[str, Template], stack: str
) -> None:
    [alarm] = [
        a["Properties"]
        for a in resources(templates[stack], "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["AlarmName"] == NAMES.misconfiguration_alarm
    ]

    assert (alarm["Namespace"], alarm["MetricName"], alarm["Threshold"]) == (
        METRICS_NAMESPACE,
        Metric.DEPENDENCY_MISCONFIGURED,
        1,
    )
    assert alarm["Dimensions"] == [{"Name": "service", "Value": SERVICE_NAME}]


@pytest.mark.parametrize("stack", BOTH)
def test_the_alarms_the_orchestrator_acts_on_measure_only_region_impairment(
    templates: dict[str, Template], stack: str
) -> None:
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in resources(templates[stack], "AWS::CloudWatch::Alarm").values()
    }

    def measured(properties: dict) -> set[str]:
        if "MetricName" in properties:
            return {properties["MetricName"]}
        return {q["MetricStat"]["Metric"]["MetricName"] for q in properties["Metrics"] if "MetricStat" in q}

    assert trigger_alarms(NAMES) <= set(alarms)
    for name in trigger_alarms(NAMES):
        assert measured(alarms[name]) <= IMPAIRMENT_METRICS, name
    assert "SystemErrors" in measured(alarms[NAMES.dynamodb_throttles_alarm])
    assert measured(alarms[NAMES.dlq_messages_alarm]) == {"ApproximateNumberOfMessagesVisible"}
    for name in paging_alarms(NAMES):
        assert name not in trigger_alarms(NAMES)
        assert name in alarms
    # A payment stored and never announced pages: a parked stream position, a failed publish.
    assert measured(alarms[NAMES.notification_dlq_alarm]) == {"ApproximateNumberOfMessagesVisible"}
    assert measured(alarms[NAMES.announce_failed_alarm]) == {"PaymentAnnounceFailed"}
    for name in (
        NAMES.dlq_messages_alarm,
        NAMES.misconfiguration_alarm,
        NAMES.notification_dlq_alarm,
        NAMES.announce_failed_alarm,
    ):
        assert "never moves traffic" in alarms[name]["AlarmDescription"]


US_REGION_SET = {"us-east-1", "us-east-2", "us-west-2"}


def mrsc_violations(table: dict[str, Any]) -> list[str]:
    """What in a global table's properties AWS refuses for multi-Region strong consistency."""
    properties = table["Properties"]
    regions = {replica["Region"] for replica in properties.get("Replicas", [])}
    regions |= {witness["Region"] for witness in properties.get("GlobalTableWitnesses", [])}
    found = []
    if properties.get("MultiRegionConsistency") != "STRONG":
        found.append("not strongly consistent")
    if "TimeToLiveSpecification" in properties:
        found.append("TTL")
    if properties.get("LocalSecondaryIndexes"):
        found.append("local secondary index")
    if regions != US_REGION_SET:
        found.append(f"regions {sorted(regions)}")
    if not properties.get("StreamSpecification", {}).get("StreamViewType"):
        found.append("no stream (the notifier's outbox)")
    return found


def payments_global_table(template: Template) -> dict[str, Any]:
    [payments] = [
        t
        for t in resources(template, "AWS::DynamoDB::GlobalTable").values()
        if t["Properties"]["TableName"] == NAMES.payments_table
    ]
    return payments


@pytest.fixture(scope="module")
def strong(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Template]:
    """Both templates with the payments table under multi-Region strong consistency."""
    return synthesize(tmp_path_factory.mktemp("strong"), strong_consistency_witness="us-west-2")


def test_strong_consistency_is_one_context_switch_with_a_witness_region(strong: dict[str, Template]) -> None:
    payments = payments_global_table(strong[PRIMARY])
    assert payments["Properties"]["GlobalTableWitnesses"] == [{"Region": "us-west-2"}]
    assert mrsc_violations(payments) == []
    # The Idempotency-Key table stays eventually consistent: it relies on TTL.
    [keys] = [
        t
        for t in resources(strong[PRIMARY], "AWS::DynamoDB::GlobalTable").values()
        if t["Properties"]["TableName"] == NAMES.idempotency_table
    ]
    assert (
        "MultiRegionConsistency" not in keys["Properties"] and "TimeToLiveSpecification" in keys["Properties"]
    )


@pytest.mark.parametrize(
    ("planted", "violation"),
    [
        ({"TimeToLiveSpecification": {"AttributeName": "expires", "Enabled": True}}, "TTL"),
        ({"LocalSecondaryIndexes": [{"IndexName": "by-time"}]}, "local secondary index"),
        ({"GlobalTableWitnesses": [{"Region": "eu-west-1"}]}, "regions"),
        ({"StreamSpecification": {}}, "no stream"),
        ({"MultiRegionConsistency": "EVENTUAL"}, "not strongly consistent"),
    ],
)
def test_a_payments_table_mrsc_would_refuse_is_caught(
    strong: dict[str, Template], planted: dict[str, Any], violation: str
) -> None:
    """The planted-bad twins of the check above: each property AWS refuses is reported."""
    payments = payments_global_table(strong[PRIMARY])
    bad = {**payments, "Properties": {**payments["Properties"], **planted}}

    assert any(found.startswith(violation) for found in mrsc_violations(bad)), mrsc_violations(bad)


@pytest.mark.parametrize("witness", ["eu-west-1", "us-east-1"])
def test_a_witness_outside_the_region_set_is_refused_at_synthesis(tmp_path: Path, witness: str) -> None:
    with pytest.raises(Exception, match="three different regions of one region set"):
        synthesize(tmp_path, strong_consistency_witness=witness)


def test_by_default_the_global_table_is_eventually_consistent(templates: dict[str, Template]) -> None:
    for table in resources(templates[PRIMARY], "AWS::DynamoDB::GlobalTable").values():
        assert "MultiRegionConsistency" not in table["Properties"]


def test_cdk_deploys_both_keys_then_the_primary_then_the_secondary(tmp_path: Path) -> None:
    synthesize(tmp_path)
    artifacts = json.loads((tmp_path / "cdk.out" / "manifest.json").read_text())["artifacts"]

    def depends_on(stack: str) -> set[str]:
        return {d for d in artifacts[stack].get("dependencies", []) if not d.endswith(".assets")}

    keys = {"PaymentsDevKeyPrimary", "PaymentsDevKeySecondary"}
    assert keys <= depends_on(PRIMARY)
    assert keys | {PRIMARY} <= depends_on(SECONDARY)


def rendered(value: Any) -> Any:
    """A custom resource's JSON property with every reference replaced by a placeholder."""
    if isinstance(value, dict) and "Fn::Join" in value:
        return "".join(part if isinstance(part, str) else "REF" for part in value["Fn::Join"][1])
    return value


@pytest.mark.parametrize("stack", BOTH)
def test_the_canary_probes_the_peer_every_minute_and_may_only_look_up_its_api_and_remove_its_payments(
    templates: dict[str, Template], stack: str
) -> None:
    template = templates[stack]
    canary = function(template, Handler.PAYMENT_CANARY)
    [event] = canary["Properties"]["Events"].values()
    statements = policy_statements(template, canary["Properties"]["Role"]["Fn::GetAtt"][0])
    peer = DEFAULT_SECONDARY_REGION if stack == PRIMARY else DEFAULT_PRIMARY_REGION

    assert (event["Type"], event["Properties"]["Schedule"]) == ("Schedule", "rate(1 minute)")
    looked_up = sorted(
        resource
        for s in statements
        if "apigateway:GET" in json.dumps(s["Action"])
        for resource in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
    )
    # Its key is its own client's, read from its secret here (tests/infrastructure/test_client_keys.py).
    assert looked_up == [f"arn:aws:apigateway:{peer}::/restapis"]
    assert actions_of(statements) - {"apigateway:GET"} <= {
        "secretsmanager:GetSecretValue",
        "kms:Decrypt",
        # A failed run goes to the control-failures queue (tests/infrastructure/test_control_plane.py).
        "sqs:SendMessage",
        "kms:Encrypt",
        "kms:GenerateDataKey",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        # It removes its own old payments, and only those (test_deployed_templates.py).
        "dynamodb:Query",
        "dynamodb:DeleteItem",
        # Once the peer is lost: its flag, this region's sweep of the table, and the announcements.
        "ssm:GetParameter",
        "ssm:PutParameter",
        "dynamodb:Scan",
        "sns:Publish",
    }
    region = DEFAULT_PRIMARY_REGION if stack == PRIMARY else DEFAULT_SECONDARY_REGION

    def resources_of(action: str) -> list[str]:
        return sorted(
            rendered(resource)
            for s in statements
            if action in json.dumps(s["Action"])
            for resource in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
        )

    sweep = f"arn:aws:ssm:{region}:REF:parameter{NAMES.orphan_sweep_parameter}"
    assert resources_of("ssm:PutParameter") == [sweep]
    assert resources_of("ssm:GetParameter") == sorted(
        [sweep, f"arn:aws:ssm:{peer}:REF:parameter{NAMES.in_service_parameter}"]
    )


@pytest.mark.parametrize("stack", BOTH)
def test_the_canarys_and_the_webhook_deliverers_errors_never_count_towards_this_regions_failover_alarm(
    templates: dict[str, Template], stack: str
) -> None:
    """The canary judges the peer; the deliverer waits on merchants' endpoints, which a client
    controls: neither may move this region."""
    [alarm] = [
        a
        for a in resources(templates[stack], "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("AlarmName") == NAMES.lambda_errors_alarm
    ]

    counted = json.dumps(alarm["Properties"]["Metrics"])
    apart = (Handler.PAYMENT_CANARY, Handler.WEBHOOK_DELIVERER)
    assert NAMES.canary_function not in counted and NAMES.webhook_function not in counted
    assert all(name in counted for h, name in FUNCTION_NAMES.items() if h not in apart)


@pytest.mark.parametrize("stack", BOTH)
def test_each_region_creates_the_alarm_on_its_own_canary_in_the_peer_region(
    templates: dict[str, Template], stack: str
) -> None:
    region, peer = (
        (DEFAULT_PRIMARY_REGION, DEFAULT_SECONDARY_REGION)
        if stack == PRIMARY
        else (DEFAULT_SECONDARY_REGION, DEFAULT_PRIMARY_REGION)
    )
    [created] = [
        r for r in resources(templates[stack], "Custom::AWS").values() if "putMetricAlarm" in json.dumps(r)
    ]
    call = json.loads(rendered(created["Properties"]["Create"]))
    peer_topic = f"arn:aws:sns:{peer}:REF:{NAMES.ops_alert_topic}"

    # One definition of the alarm: what the local environment provisions, the stack creates.
    assert call["region"] == peer
    assert call["parameters"] == canary_alarm_definition(NAMES, region, [peer_topic])
    assert json.loads(rendered(created["Properties"]["Delete"]))["parameters"] == {
        "AlarmNames": [NAMES.canary_alarm(region)]
    }
