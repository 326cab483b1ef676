"""The SQS payment processor and the SNS failover orchestrator through Chalice's test client."""

from __future__ import annotations

import json
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.adapters.peer_api import StaticPeerApi
from chalicelib.failover import paging_alarms
from chalicelib.items import is_payment_record, unscoped
from chalicelib.names import Handler, ResourceNames
from chalicelib.regions import RegionFlag
from localenv.provision import RegionResources
from tests.conftest import MERCHANT, PEER_REGION, REGION, SUFFIX, CapturedLogs, TopicSpy


def message(transaction_id: str, amount: str = "10.00") -> str:
    return json.dumps(
        {"transaction_id": transaction_id, "customer_id": "cust-1", "amount": amount, "currency": "EUR"}
    )


def sqs_event(client: Client, bodies: list[str]) -> dict[str, Any]:
    event = client.events.generate_sqs_event(message_bodies=bodies, queue_name="payment-queue-test")
    # Chalice gives every generated record the same id; real SQS ids are unique per message.
    for index, record in enumerate(event["Records"]):
        record["messageId"] = f"message-{index}"
        # The API names the client of every payment it queues.
        record["messageAttributes"] = {"client": {"stringValue": MERCHANT, "dataType": "String"}}
    return event


def processed_ids(aws: Any, resources: RegionResources) -> list[str]:
    items = aws("dynamodb").scan(TableName=resources.payments_table)["Items"]
    return sorted(unscoped(item["transaction_id"]["S"])[1] for item in items if is_payment_record(item))


def rejections(aws: Any, resources: RegionResources) -> list[dict[str, Any]]:
    items = aws("dynamodb").scan(TableName=resources.payments_table)["Items"]
    return [item for item in items if item.get("status", {}).get("S") == "REJECTED"]


def test_messages_that_can_never_be_processed_are_rejected_announced_and_not_retried(
    client: Client, aws: Any, resources: RegionResources, transactions_topic: TopicSpy
) -> None:
    bodies = [
        message("txn-a"),
        "{not json",
        message("txn-b"),
        message("txn-c", amount="-3"),
        message("txn-d"),
    ]

    response = client.lambda_.invoke(Handler.PAYMENT_PROCESSOR, sqs_event(client, bodies))

    # Nothing is reported failed: the queue deletes every message, nothing is retried or dead-lettered.
    assert response.payload == {"batchItemFailures": []}
    assert processed_ids(aws, resources) == ["txn-a", "txn-b", "txn-d"]
    assert sorted(item["message_id"]["S"] for item in rejections(aws, resources)) == [
        "message-1",
        "message-3",
    ]
    published = transactions_topic.messages()
    assert sorted(m["payment"]["transaction_id"] for m in published if m["event"] == "payment.processed") == [
        "txn-a",
        "txn-b",
        "txn-d",
    ]
    rejected = sorted((m["rejection"] for m in published if m["event"] == "payment.rejected"), key=str)
    assert [(r["transaction_id"], r["errors"][0]["field"]) for r in rejected] == [
        ("txn-c", "amount"),
        (None, "(body)"),
    ]
    assert client.http.get("/payments/txn-c").json_body["status"] == "REJECTED"


def test_a_transaction_id_reused_for_another_payment_is_rejected_once_beside_the_payment(
    client: Client, aws: Any, resources: RegionResources, transactions_topic: TopicSpy
) -> None:
    client.lambda_.invoke(Handler.PAYMENT_PROCESSOR, sqs_event(client, [message("txn-reused")]))
    reuse = sqs_event(client, [message("txn-reused", amount="999.00")])
    reuse["Records"][0]["messageId"] = "reuse-1"

    # The same conflicting message delivered twice (a lost delete): one rejection, one event.
    first = client.lambda_.invoke(Handler.PAYMENT_PROCESSOR, reuse)
    again = client.lambda_.invoke(Handler.PAYMENT_PROCESSOR, reuse)

    assert first.payload == again.payload == {"batchItemFailures": []}
    assert len(rejections(aws, resources)) == 1
    events = sorted(m["event"] for m in transactions_topic.messages())
    assert events == ["payment.processed", "payment.rejected"]
    found = client.http.get("/payments/txn-reused").json_body
    assert (found["status"], found["amount"]) == ("PROCESSED", "10.00")
    [rejection] = found["rejections"]
    assert (rejection["amount"], rejection["errors"][0]["field"]) == ("999.00", "transaction_id")


def test_the_correlation_id_travels_from_the_message_attribute_to_the_logs(
    client: Client, payment_logs: CapturedLogs
) -> None:
    event = sqs_event(client, [message("txn-corr")])
    event["Records"][0]["messageAttributes"]["correlation_id"] = {
        "stringValue": "corr-42",
        "dataType": "String",
    }

    response = client.lambda_.invoke(Handler.PAYMENT_PROCESSOR, event)

    assert response.payload == {"batchItemFailures": []}
    processed = [json.loads(line) for line in payment_logs.lines() if "payment processed" in line]
    assert processed[0]["correlation_id"] == "corr-42"


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
        Name=ResourceNames(SUFFIX).in_service_parameter,
        Value=RegionFlag(in_service).to_text(),
        Type="String",
        Overwrite=True,
    )


def test_a_critical_alarm_takes_the_region_out_of_service_and_says_so(
    client: Client, aws: Any, capsys: pytest.CaptureFixture[str], payment_logs: CapturedLogs
) -> None:
    set_peer_flag(aws, in_service=True)
    ops = TopicSpy(aws, aws("sns").create_topic(Name=ResourceNames(SUFFIX).ops_alert_topic)["TopicArn"])
    name = ResourceNames(SUFFIX).lambda_errors_alarm

    client.lambda_.invoke(
        Handler.FAILOVER_ORCHESTRATOR, client.events.generate_sns_event(message=alarm(name))
    )
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


@pytest.mark.parametrize("name", sorted(paging_alarms(ResourceNames(SUFFIX))))
def test_paging_alarms_never_move_traffic(
    client: Client, aws: Any, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    set_peer_flag(aws, in_service=True)

    client.lambda_.invoke(
        Handler.FAILOVER_ORCHESTRATOR, client.events.generate_sns_event(message=alarm(name))
    )

    assert "FailoverSignal" not in capsys.readouterr().out
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


def test_recovery_of_an_alarm_does_not_fail_back(
    client: Client, aws: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    set_peer_flag(aws, in_service=True)
    name = ResourceNames(SUFFIX).api_5xx_alarm
    client.lambda_.invoke(
        Handler.FAILOVER_ORCHESTRATOR, client.events.generate_sns_event(message=alarm(name))
    )

    client.lambda_.invoke(
        Handler.FAILOVER_ORCHESTRATOR, client.events.generate_sns_event(message=alarm(name, "OK"))
    )

    assert capsys.readouterr().out.count('"FailoverSignal":[1.0]') == 1
    assert flag_of(aws, REGION).in_service is False


def test_the_canary_records_the_peers_result_as_metrics_and_never_raises(
    client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    from chalicelib import observer
    from chalicelib.observability import flush_metrics
    from chalicelib.services import get_services

    def unreachable(*_: Any) -> tuple[int, dict[str, str], Any]:
        raise OSError("no route to the peer")

    services = get_services()._replace(peer_api=StaticPeerApi("http://peer.invalid", lambda: "k"))
    result = observer.run_canary(services, unreachable)
    flush_metrics()

    assert not result.success and result.target_region == PEER_REGION
    [line] = [line for line in capsys.readouterr().out.splitlines() if "CanarySuccess" in line]
    emitted = json.loads(line)
    assert emitted["CanarySuccess"] in (0.0, [0.0]) and emitted["TargetRegion"] == PEER_REGION
    directive = emitted["_aws"]["CloudWatchMetrics"][0]
    assert [sorted(d) for d in directive["Dimensions"]] == [["TargetRegion", "service"]]


def test_the_canary_alarm_on_the_peer_takes_the_peer_out_so_failback_stays_manual(
    client: Client, aws: Any
) -> None:
    set_peer_flag(aws, in_service=True)
    name = ResourceNames(SUFFIX).canary_alarm(PEER_REGION)

    client.lambda_.invoke(
        Handler.FAILOVER_ORCHESTRATOR, client.events.generate_sns_event(message=alarm(name))
    )
    peer = flag_of(aws, PEER_REGION)
    client.lambda_.invoke(
        Handler.FAILOVER_ORCHESTRATOR, client.events.generate_sns_event(message=alarm(name, state="OK"))
    )

    assert peer.in_service is False and name in peer.reason
    assert flag_of(aws, PEER_REGION).in_service is False  # the canary passing again changes nothing
    assert flag_of(aws, REGION).in_service is True


def test_an_observer_out_of_service_never_takes_its_peer_out(
    client: Client, aws: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    set_peer_flag(aws, in_service=True)
    aws("ssm").put_parameter(
        Name=ResourceNames(SUFFIX).in_service_parameter,
        Value=RegionFlag(False, reason="test").to_text(),
        Type="String",
        Overwrite=True,
    )

    client.lambda_.invoke(
        Handler.FAILOVER_ORCHESTRATOR,
        client.events.generate_sns_event(message=alarm(ResourceNames(SUFFIX).canary_alarm(PEER_REGION))),
    )

    # The canary alarm was acted on, and refused: not merely ignored.
    assert "FailoverRefused" in capsys.readouterr().out
    assert flag_of(aws, PEER_REGION).in_service is True


def test_a_peer_whose_flag_cannot_be_written_is_logged_not_an_error_of_the_observer(
    client: Client, aws: Any, payment_logs: CapturedLogs
) -> None:
    from chalicelib import orchestrator
    from chalicelib.errors import DependencyUnavailable
    from chalicelib.services import get_services

    services = get_services()

    class PeerFlagDown:
        """The peer's Parameter Store refuses writes (its region is failing more than we know)."""

        def flag(self, region: str) -> RegionFlag:
            return services.region_control.flag(region)

        def set_flag(self, region: str, flag: RegionFlag) -> None:
            raise DependencyUnavailable(f"in-service flag of {region}")

    name = ResourceNames(SUFFIX).canary_alarm(PEER_REGION)
    decision = orchestrator.handle_ops_alert(alarm(name), services._replace(region_control=PeerFlagDown()))

    assert decision is not None and decision.region == PEER_REGION
    assert any("could not take the failing peer out of service" in line for line in payment_logs.lines())
