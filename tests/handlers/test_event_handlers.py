"""The SQS payment processor and the SNS failover orchestrator through Chalice's test client."""

from __future__ import annotations

import json
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.names import Handler, ResourceNames
from localenv.provision import RegionResources
from chalicelib.regions import RegionFlag
from tests.conftest import PEER_REGION, REGION, SUFFIX, CapturedLogs, TopicSpy


def message(transaction_id: str, amount: str = "10.00") -> str:
    return json.dumps(
        {"transaction_id": transaction_id, "customer_id": "cust-1", "amount": amount, "currency": "EUR"}
    )


def sqs_event(client: Client, bodies: list[str]) -> dict[str, Any]:
    event = client.events.generate_sqs_event(message_bodies=bodies, queue_name="payment-queue-test")
    # Chalice gives every generated record the same id; real SQS ids are unique per message.
    for index, record in enumerate(event["Records"]):
        record["messageId"] = f"message-{index}"
    return event


def processed_ids(aws: Any, resources: RegionResources) -> list[str]:
    items = aws("dynamodb").scan(TableName=resources.payments_table)["Items"]
    return sorted(item["transaction_id"]["S"] for item in items if item["timestamp"]["N"] != "0")


def test_a_batch_is_processed_and_only_the_bad_messages_are_reported(
    client: Client, aws: Any, resources: RegionResources, transactions_topic: TopicSpy
) -> None:
    bodies = [message("txn-a"), "{not json", message("txn-b"), message("txn-c", amount="-3"), message("txn-d")]

    response = client.lambda_.invoke(Handler.PAYMENT_PROCESSOR, sqs_event(client, bodies))

    assert response.payload == {
        "batchItemFailures": [{"itemIdentifier": "message-1"}, {"itemIdentifier": "message-3"}]
    }
    assert processed_ids(aws, resources) == ["txn-a", "txn-b", "txn-d"]
    assert sorted(m["payment"]["transaction_id"] for m in transactions_topic.messages()) == ["txn-a", "txn-b", "txn-d"]


def test_the_correlation_id_travels_from_the_message_attribute_to_the_logs(
    client: Client, payment_logs: CapturedLogs
) -> None:
    event = sqs_event(client, [message("txn-corr")])
    event["Records"][0]["messageAttributes"] = {"correlation_id": {"stringValue": "corr-42", "dataType": "String"}}

    response = client.lambda_.invoke(Handler.PAYMENT_PROCESSOR, event)

    assert response.payload == {"batchItemFailures": []}
    processed = [json.loads(line) for line in payment_logs.lines() if "payment processed" in line]
    assert processed[0]["correlation_id"] == "corr-42"


def test_a_batch_where_everything_fails_reports_every_message(client: Client) -> None:
    response = client.lambda_.invoke(Handler.PAYMENT_PROCESSOR, sqs_event(client, ["{", "[]"]))

    assert response.payload == {
        "batchItemFailures": [{"itemIdentifier": "message-0"}, {"itemIdentifier": "message-1"}]
    }


def test_a_redelivered_message_creates_one_payment_and_one_notification(
    client: Client, aws: Any, resources: RegionResources, transactions_topic: TopicSpy
) -> None:
    event = sqs_event(client, [message("txn-again"), message("txn-again")])

    first = client.lambda_.invoke(Handler.PAYMENT_PROCESSOR, event)
    second = client.lambda_.invoke(Handler.PAYMENT_PROCESSOR, event)

    assert first.payload == second.payload == {"batchItemFailures": []}
    assert processed_ids(aws, resources) == ["txn-again"]
    assert len(transactions_topic.messages()) == 1


def test_the_processor_fails_the_message_when_the_table_is_unavailable(
    client: Client, aws: Any, resources: RegionResources
) -> None:
    aws("dynamodb").delete_table(TableName=resources.payments_table)

    response = client.lambda_.invoke(Handler.PAYMENT_PROCESSOR, sqs_event(client, [message("txn-x")]))

    assert response.payload == {"batchItemFailures": [{"itemIdentifier": "message-0"}]}


def alarm(name: str, state: str = "ALARM") -> str:
    return json.dumps(
        {
            "AlarmName": name,
            "NewStateValue": state,
            "OldStateValue": "OK",
            "NewStateReason": "Threshold Crossed",
            "AlarmArn": f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}",
        }
    )


def flag_of(aws: Any, region: str) -> RegionFlag:
    parameter = ResourceNames(SUFFIX).in_service_parameter
    return RegionFlag.from_text(aws("ssm", region).get_parameter(Name=parameter)["Parameter"]["Value"])


def set_peer_flag(aws: Any, in_service: bool) -> None:
    aws("ssm", PEER_REGION).put_parameter(
        Name=ResourceNames(SUFFIX).in_service_parameter, Value=RegionFlag(in_service).to_text(), Type="String",
        Overwrite=True,
    )


def test_a_critical_alarm_takes_the_region_out_of_service_and_says_so(
    client: Client, aws: Any, capsys: pytest.CaptureFixture[str], payment_logs: CapturedLogs
) -> None:
    set_peer_flag(aws, in_service=True)
    ops = TopicSpy(aws, aws("sns").create_topic(Name=ResourceNames(SUFFIX).ops_alert_topic)["TopicArn"])
    name = ResourceNames(SUFFIX).dlq_messages_alarm

    client.lambda_.invoke(Handler.FAILOVER_ORCHESTRATOR, client.events.generate_sns_event(message=alarm(name)))
    health = client.http.get("/health")

    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any("FailoverExecuted" in doc for doc in emf)
    flag = flag_of(aws, REGION)
    assert (flag.in_service, flag.changed_by) == (False, "failover-orchestrator")
    assert name in flag.reason
    [notice] = ops.messages()
    assert (notice["event"], notice["region"]) == ("region.out_of_service", REGION)
    assert (health.status_code, health.json_body["failing"]) == (503, "in-service flag")


@pytest.mark.parametrize("peer", ["out of service", "unreadable"])
def test_the_last_region_in_service_is_never_taken_out(
    client: Client, aws: Any, peer: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if peer == "out of service":
        set_peer_flag(aws, in_service=False)

    client.lambda_.invoke(
        Handler.FAILOVER_ORCHESTRATOR,
        client.events.generate_sns_event(message=alarm(ResourceNames(SUFFIX).api_5xx_alarm)),
    )

    assert "FailoverRefused" in capsys.readouterr().out
    assert flag_of(aws, REGION).in_service is True
    assert client.http.get("/health").status_code == 200


@pytest.mark.parametrize("text", ["hello", json.dumps({"some": "event"})])
def test_the_orchestrator_ignores_other_messages(
    client: Client, text: str, capsys: pytest.CaptureFixture[str], payment_logs: CapturedLogs
) -> None:
    client.lambda_.invoke(Handler.FAILOVER_ORCHESTRATOR, client.events.generate_sns_event(message=text))

    assert "FailoverSignal" not in capsys.readouterr().out
    ignored = [json.loads(line) for line in payment_logs.lines() if "not a CloudWatch alarm" in line]
    assert ignored


def test_recovery_of_an_alarm_does_not_fail_back(client: Client, aws: Any, capsys: pytest.CaptureFixture[str]) -> None:
    set_peer_flag(aws, in_service=True)
    name = ResourceNames(SUFFIX).api_5xx_alarm
    client.lambda_.invoke(Handler.FAILOVER_ORCHESTRATOR, client.events.generate_sns_event(message=alarm(name)))

    client.lambda_.invoke(Handler.FAILOVER_ORCHESTRATOR, client.events.generate_sns_event(message=alarm(name, "OK")))

    assert capsys.readouterr().out.count("\"FailoverSignal\":[1.0]") == 1
    assert flag_of(aws, REGION).in_service is False
