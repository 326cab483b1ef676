"""The whole system over real HTTP: `chalice local` for two regions on moto's server.

One environment is started for the session (as `make run` starts it) and every test talks to it
the way a person with curl would.
"""

from __future__ import annotations

import json
import time
import uuid
from functools import partial
from typing import Any

import pytest
import requests

from chalicelib.names import ResourceNames
from localenv.environment import LocalEnvironment
from tests.conftest import TopicSpy
from tests.integration.conftest import PRIMARY, SECONDARY, eventually

pytestmark = pytest.mark.integration





def post(
    environment: LocalEnvironment, region: str, path: str, body: Any, headers: dict[str, str] | None = None
) -> requests.Response:
    return requests.post(
        environment.api_url(region) + path,
        data=body if isinstance(body, str) else json.dumps(body),
        headers={"Content-Type": "application/json", "x-api-key": environment.api_key, **(headers or {})},
        timeout=10,
    )


def get(environment: LocalEnvironment, region: str, path: str) -> requests.Response:
    return requests.get(environment.api_url(region) + path, headers={"x-api-key": environment.api_key}, timeout=10)


def records(environment: LocalEnvironment, region: str, transaction_id: str) -> list[dict[str, Any]]:
    table = environment.resources[region].payments_table
    return environment.client("dynamodb", region).query(
        TableName=table,
        KeyConditionExpression="transaction_id = :t AND #ts > :zero",
        ExpressionAttributeNames={"#ts": "timestamp"},
        ExpressionAttributeValues={":t": {"S": transaction_id}, ":zero": {"N": "0"}},
        ConsistentRead=True,
    )["Items"]


def test_the_readme_session_works_over_http(environment: LocalEnvironment) -> None:
    body = {"transaction_id": "readme-1", "customer_id": "cust-1", "amount": "49.95", "currency": "USD"}

    validated = post(environment, PRIMARY, "/validate", {**body, "transaction_id": "readme-0"})
    created = post(environment, PRIMARY, "/process", body)
    repeated = post(environment, PRIMARY, "/process", body)
    fetched = get(environment, PRIMARY, "/payments/readme-1")
    rejected = post(environment, PRIMARY, "/validate", {**body, "amount": "49.999"})
    health = requests.get(environment.api_url(PRIMARY) + "/health", timeout=10)

    assert validated.status_code == 202
    assert (created.status_code, repeated.status_code, fetched.status_code) == (201, 200, 200)
    assert repeated.json() == created.json() == fetched.json()
    assert rejected.status_code == 422
    assert rejected.json()["errors"][0]["field"] == "amount"
    assert (health.status_code, health.json()["region"]) == (200, PRIMARY)


def test_payments_sent_to_either_region_are_processed_once_and_replicated_to_both(
    environment: LocalEnvironment,
) -> None:
    sent = {PRIMARY: [f"east1-{n}" for n in range(4)], SECONDARY: [f"east2-{n}" for n in range(4)]}
    for region, transaction_ids in sent.items():
        for transaction_id in transaction_ids:
            body = {"transaction_id": transaction_id, "customer_id": "cust-r", "amount": "5.00", "currency": "EUR"}
            assert post(environment, region, "/validate", body).status_code == 202
            # A client retry: the same payment validated twice must still be processed once.
            assert post(environment, region, "/validate", body).status_code == 202

    everything = [t for ids in sent.values() for t in ids]

    def replicated_everywhere() -> bool:
        return all(len(records(environment, region, t)) == 1 for region in (PRIMARY, SECONDARY) for t in everything)

    assert eventually(replicated_everywhere), {
        region: {t: len(records(environment, region, t)) for t in everything} for region in (PRIMARY, SECONDARY)
    }
    for region, transaction_ids in sent.items():
        for transaction_id in transaction_ids:
            [item] = records(environment, SECONDARY if region == PRIMARY else PRIMARY, transaction_id)
            assert item["region"]["S"] == region


def test_a_reused_transaction_id_and_an_unreadable_message_are_rejected_not_dead_lettered(
    environment: LocalEnvironment,
) -> None:
    resources = environment.resources[PRIMARY]
    sqs = environment.client("sqs", PRIMARY)
    transaction_id = f"reuse-{uuid.uuid4().hex[:12]}"
    body = {"transaction_id": transaction_id, "customer_id": "cust-x", "amount": "5.00", "currency": "EUR"}
    assert post(environment, PRIMARY, "/process", body).status_code == 201
    # /validate cannot know the id is taken: the processor finds out.
    assert post(environment, PRIMARY, "/validate", {**body, "amount": "999.00"}).status_code == 202
    unreadable = f'{{"transaction_id": "poison-{uuid.uuid4().hex}"'
    sent = sqs.send_message(QueueUrl=resources.payment_queue_url, MessageBody=unreadable)["MessageId"]

    def rejected_reuse() -> list[dict[str, Any]]:
        return get(environment, PRIMARY, f"/payments/{transaction_id}").json().get("rejections", [])

    def rejected_message() -> list[dict[str, Any]]:
        items = environment.client("dynamodb", PRIMARY).scan(TableName=resources.payments_table, ConsistentRead=True)
        return [i for i in items["Items"] if i.get("message_id", {}).get("S") == sent]

    [rejection] = eventually(rejected_reuse)
    [item] = eventually(rejected_message)
    assert (rejection["status"], rejection["amount"]) == ("REJECTED", "999.00")
    assert item["errors"]["L"][0]["M"]["field"]["S"] == "(body)"
    # Both were deleted from the queue on their first receive: never retried, never dead-lettered.
    events_log = environment.log_of(PRIMARY, "events")
    assert "FAILED    (unreadable message)" not in events_log
    assert f"FAILED    {transaction_id}" not in events_log
    dead = sqs.receive_message(QueueUrl=resources.payment_dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    assert [m for m in dead.get("Messages", []) if m["Body"] == unreadable] == []


def test_an_alarm_on_the_ops_alert_topic_reaches_the_orchestrator(environment: LocalEnvironment) -> None:
    names = ResourceNames(environment.environment_suffix)
    alarm = {
        "AlarmName": names.lambda_errors_alarm,
        "NewStateValue": "ALARM",
        "OldStateValue": "OK",
        "AlarmArn": f"arn:aws:cloudwatch:{SECONDARY}:123456789012:alarm:{names.lambda_errors_alarm}",
    }

    environment.client("sns", SECONDARY).publish(
        TopicArn=environment.resources[SECONDARY].ops_alert_topic_arn, Message=json.dumps(alarm)
    )

    def decision() -> list[dict[str, Any]]:
        lines = environment.log_of(SECONDARY, "events").splitlines()
        return [json.loads(line) for line in lines if '"failover decision"' in line]

    [logged] = eventually(decision)
    assert logged["action"] == "take_region_out_of_service"
    assert logged["alarm_region"] == SECONDARY


@pytest.mark.parametrize("key", [None, "not-the-key"])
def test_payment_routes_refuse_requests_without_the_api_key_and_health_stays_open(
    environment: LocalEnvironment, key: str | None
) -> None:
    body = {"transaction_id": "no-key-1", "customer_id": "cust-1", "amount": "1.00", "currency": "USD"}
    headers = {"Content-Type": "application/json", **({"x-api-key": key} if key else {})}

    responses = [
        requests.post(environment.api_url(PRIMARY) + path, data=json.dumps(body), headers=headers, timeout=10)
        for path in ("/validate", "/process")
    ] + [requests.get(environment.api_url(PRIMARY) + "/payments/no-key-1", headers=headers, timeout=10)]
    health = requests.get(environment.api_url(PRIMARY) + "/health", timeout=10)

    assert [r.status_code for r in responses] == [403, 403, 403]
    assert all(r.json() == {"message": "Forbidden"} for r in responses)
    assert health.status_code == 200
    assert records(environment, PRIMARY, "no-key-1") == []


def test_each_payment_is_announced_once_by_the_region_that_stored_it(environment: LocalEnvironment) -> None:
    spies = {
        region: TopicSpy(partial(environment.client, region=region), environment.resources[region].transaction_topic_arn)
        for region in (PRIMARY, SECONDARY)
    }
    body = {"transaction_id": "announce-1", "customer_id": "cust-n", "amount": "7.00", "currency": "EUR"}

    for _ in range(3):
        assert post(environment, PRIMARY, "/validate", body).status_code == 202
    eventually(lambda: records(environment, SECONDARY, "announce-1"))
    announced = eventually(spies[PRIMARY].messages)
    time.sleep(2)  # room for a wrong second announcement (a retry, or the replica's stream) to arrive

    assert [m["payment"]["transaction_id"] for m in announced + spies[PRIMARY].messages()] == ["announce-1"]
    assert spies[SECONDARY].messages() == []
