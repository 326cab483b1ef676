"""The whole system over real HTTP: `chalice local` for two regions on moto's server.

One environment is started for the session (as `make run` starts it) and every test talks to it
the way a person with curl would.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import requests

from chalicelib.canary import CANARY_CUSTOMER
from chalicelib.items import scoped
from chalicelib.names import ResourceNames
from chalicelib.regions import RegionFlag
from localenv.environment import LOCAL_MERCHANT, RUNTIME, LocalEnvironment
from localenv.network import free_port, wait_for_port
from operations import regions
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
    return requests.get(
        environment.api_url(region) + path, headers={"x-api-key": environment.api_key}, timeout=10
    )


def records(environment: LocalEnvironment, region: str, transaction_id: str) -> list[dict[str, Any]]:
    table = environment.resources[region].payments_table
    return environment.client("dynamodb", region).query(
        TableName=table,
        KeyConditionExpression="transaction_id = :t AND #ts > :zero",
        ExpressionAttributeNames={"#ts": "timestamp"},
        ExpressionAttributeValues={":t": {"S": scoped(LOCAL_MERCHANT, transaction_id)}, ":zero": {"N": "0"}},
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
            body = {
                "transaction_id": transaction_id,
                "customer_id": "cust-r",
                "amount": "5.00",
                "currency": "EUR",
            }
            assert post(environment, region, "/validate", body).status_code == 202
            # A client retry: the same payment validated twice must still be processed once.
            assert post(environment, region, "/validate", body).status_code == 202

    everything = [t for ids in sent.values() for t in ids]

    def replicated_everywhere() -> bool:
        return all(
            len(records(environment, region, t)) == 1 for region in (PRIMARY, SECONDARY) for t in everything
        )

    assert eventually(replicated_everywhere), {
        region: {t: len(records(environment, region, t)) for t in everything}
        for region in (PRIMARY, SECONDARY)
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
        items = environment.client("dynamodb", PRIMARY).scan(
            TableName=resources.payments_table, ConsistentRead=True
        )
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
        decisions = [json.loads(line) for line in lines if '"failover decision"' in line]
        # The observer's canary alarm on the peer reaches this orchestrator too: not this test's.
        return [d for d in decisions if d.get("alarm") == names.lambda_errors_alarm]

    target = environment.target()
    try:
        [logged] = eventually(decision)
        taken_out = eventually(lambda: not regions.flag_of(target, SECONDARY).in_service)
    finally:
        # The environment is shared with other tests: the secondary goes back in service.
        regions.set_flag(
            target, SECONDARY, RegionFlag(in_service=True, reason="test over", changed_by="test")
        )
    assert logged["action"] == "take_region_out_of_service"
    assert logged["alarm_region"] == SECONDARY
    assert taken_out


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
        region: TopicSpy(
            partial(environment.client, region=region), environment.resources[region].transaction_topic_arn
        )
        for region in (PRIMARY, SECONDARY)
    }
    body = {"transaction_id": "announce-1", "customer_id": "cust-n", "amount": "7.00", "currency": "EUR"}

    for _ in range(3):
        assert post(environment, PRIMARY, "/validate", body).status_code == 202
    eventually(lambda: records(environment, SECONDARY, "announce-1"))

    def ours(spy: TopicSpy) -> list[dict[str, Any]]:
        # Subscribers leave the canary's synthetic customer out, as business reports do.
        return [m for m in spy.messages() if m.get("payment", {}).get("customer_id") != CANARY_CUSTOMER]

    announced = eventually(lambda: ours(spies[PRIMARY]))
    time.sleep(2)  # room for a wrong second announcement (a retry, or the replica's stream) to arrive

    assert [m["payment"]["transaction_id"] for m in announced + ours(spies[PRIMARY])] == ["announce-1"]
    assert ours(spies[SECONDARY]) == []


CHALICE = str(Path(sys.executable).with_name("chalice"))


def chalice_local(state_file: Path, port: int) -> subprocess.Popen[str]:
    """`cd runtime && chalice local --stage local --port PORT`, as a developer would type it."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PAYMENTS_"))}
    return subprocess.Popen(
        [CHALICE, "local", "--stage", "local", "--port", str(port)],
        cwd=RUNTIME,
        env={**environ, "PAYMENTS_LOCAL_STATE": str(state_file)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def test_plain_chalice_local_serves_the_same_api_against_make_runs_aws(
    environment: LocalEnvironment, tmp_path: Path
) -> None:
    state_file = tmp_path / "state.json"
    state_file.write_text(json.dumps(environment.state()))
    port = free_port()
    process = chalice_local(state_file, port)
    try:
        wait_for_port(port, 30, process)
        url = f"http://127.0.0.1:{port}"
        body = {
            "transaction_id": f"cl-{uuid.uuid4().hex[:10]}",
            "customer_id": "c-cl",
            "amount": "3.30",
            "currency": "USD",
        }
        refused = requests.post(url + "/process", json=body, timeout=10)
        created = requests.post(
            url + "/process", json=body, headers={"x-api-key": environment.api_key}, timeout=10
        )
        health = requests.get(url + "/health", timeout=10)
    finally:
        # Its reloader runs the server in a child process: stop both.
        os.killpg(process.pid, signal.SIGTERM)
        process.communicate(timeout=10)

    assert refused.status_code == 403
    assert created.status_code == 201
    assert (health.status_code, health.json()["region"]) == (200, PRIMARY)
    # Written to the same local AWS that `make run` serves.
    assert get(environment, PRIMARY, f"/payments/{body['transaction_id']}").json()["amount"] == "3.30"


def test_chalice_local_without_make_run_says_in_one_line_what_to_start(tmp_path: Path) -> None:
    process = chalice_local(tmp_path / "no-state.json", free_port())

    _, errors = process.communicate(timeout=60)

    lines = [line for line in errors.splitlines() if line.strip()]
    assert len(lines) == 1 and "make run" in lines[0], errors


def test_the_local_api_queues_twenty_clients_that_connect_while_it_is_busy(
    environment: LocalEnvironment,
) -> None:
    clients = 20
    address = ("127.0.0.1", int(environment.api_url(PRIMARY).rsplit(":", 1)[1]))
    pid = environment.api_pid(PRIMARY)
    # Stopped, the server accepts nothing: only its listen backlog holds connections (Python's
    # default of 5 held six; the seventh client's connection was dropped or reset).
    os.kill(pid, signal.SIGSTOP)
    sockets = [socket.socket() for _ in range(clients)]
    try:
        for client in sockets:
            client.setblocking(False)
            client.connect_ex(address)
        _, connected, _ = select.select([], sockets, [], 2.0)
        established = [c for c in connected if c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0]
    finally:
        os.kill(pid, signal.SIGCONT)
        for client in sockets:
            client.close()

    assert len(established) == clients

    start = threading.Barrier(clients)

    def call(_: int) -> int | str:
        start.wait()
        try:
            return requests.get(environment.api_url(PRIMARY) + "/health", timeout=30).status_code
        except requests.ConnectionError as error:
            return type(error).__name__

    with ThreadPoolExecutor(clients) as pool:
        assert list(pool.map(call, range(clients))) == [200] * clients
