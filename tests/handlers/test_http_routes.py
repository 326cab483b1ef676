"""The HTTP routes through Chalice's test client, against moto's server on loopback."""

from __future__ import annotations

import json
from typing import Any

import pytest
from chalice.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.items import scoped
from chalicelib.names import EnvVar, ResourceNames
from chalicelib.regions import RegionFlag
from localenv.provision import RegionResources
from tests.conftest import MERCHANT, SUFFIX, CapturedLogs, TopicSpy

JSON_HEADERS = {"Content-Type": "application/json"}


def payment(**overrides: Any) -> dict[str, Any]:
    body = {"transaction_id": "txn-100", "customer_id": "cust-7", "amount": "25.10", "currency": "USD"}
    body.update(overrides)
    return body


def post(client: Client, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
    raw = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.http.post(path, headers=headers or JSON_HEADERS, body=raw)


def queued(aws: Any, resources: RegionResources) -> list[dict[str, Any]]:
    sqs = aws("sqs")
    messages = sqs.receive_message(
        QueueUrl=resources.payment_queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    ).get("Messages", [])
    return messages


def table_items(aws: Any, resources: RegionResources) -> list[dict[str, Any]]:
    return aws("dynamodb").scan(TableName=resources.payments_table)["Items"]


def test_validate_accepts_a_payment_and_queues_it(
    client: Client, aws: Any, resources: RegionResources
) -> None:
    response = post(client, "/validate", payment(), {**JSON_HEADERS, "X-Correlation-Id": "corr-1"})

    assert response.status_code == 202
    assert response.json_body == {
        "status": "accepted",
        "transaction_id": "txn-100",
        "customer_id": "cust-7",
        "amount": "25.10",
        "currency": "USD",
        "fraud_review": False,
    }
    assert response.headers["X-Correlation-Id"] == "corr-1"
    [message] = queued(aws, resources)
    assert json.loads(message["Body"])["amount"] == "25.10"
    assert message["MessageAttributes"]["correlation_id"]["StringValue"] == "corr-1"


def test_validate_flags_large_payments_for_fraud_review_and_counts_them(
    client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    response = post(client, "/validate", payment(amount="15000.00"))

    assert response.status_code == 202
    assert response.json_body["fraud_review"] is True
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any(
        doc.get("PaymentFraudFlagged") == [1.0] or doc.get("PaymentFraudFlagged") == 1.0 for doc in emf
    )


def test_validate_rejects_with_every_problem_and_queues_nothing(
    client: Client, aws: Any, resources: RegionResources
) -> None:
    response = post(client, "/validate", {"amount": "-1", "currency": "usd", "customer_id": "c"})

    assert response.status_code == 422
    fields = {error["field"] for error in response.json_body["errors"]}
    assert fields == {"transaction_id", "amount"}
    assert queued(aws, resources) == []


@pytest.mark.parametrize("path", ["/validate", "/process"])
@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        ("{not json", JSON_HEADERS, 400),
        ("", JSON_HEADERS, 400),
        ('{"amount": NaN}', JSON_HEADERS, 400),
        (json.dumps(payment()), {"Content-Type": "text/plain"}, 415),
        (json.dumps(payment()), {"Content-Type": "application/x-www-form-urlencoded"}, 415),
        ("[" + "1," * 40_000 + "1]", JSON_HEADERS, 413),
        (json.dumps(payment(amount=12.5, extra={"a": 1})), JSON_HEADERS, 422),
        (json.dumps([payment()]), JSON_HEADERS, 422),
    ],
)
def test_bad_bodies_get_a_json_4xx_and_write_nothing(
    client: Client,
    aws: Any,
    resources: RegionResources,
    path: str,
    body: str,
    headers: dict[str, str],
    status: int,
) -> None:
    response = post(client, path, body, headers)

    assert response.status_code == status
    assert response.json_body["errors"][0]["field"]
    assert response.json_body["errors"][0]["message"]
    assert queued(aws, resources) == []
    assert table_items(aws, resources) == []


def test_process_writes_the_record_and_publishes_once(
    client: Client, aws: Any, resources: RegionResources, transactions_topic: TopicSpy
) -> None:
    response = post(client, "/process", payment(amount="19.99"))

    assert response.status_code == 201
    record = response.json_body
    assert record["transaction_id"] == "txn-100"
    assert record["amount"] == "19.99"
    assert record["status"] == "PROCESSED"
    assert record["region"] == "us-east-1"
    assert record["fraud_review"] is False
    assert isinstance(record["timestamp"], int) and record["timestamp"] > 1_600_000_000_000
    stored = aws("dynamodb").query(
        TableName=resources.payments_table,
        KeyConditionExpression="transaction_id = :t AND #ts > :zero",
        ExpressionAttributeNames={"#ts": "timestamp"},
        ExpressionAttributeValues={":t": {"S": scoped(MERCHANT, "txn-100")}, ":zero": {"N": "0"}},
    )["Items"]
    assert [item["amount"] for item in stored] == [{"N": "19.99"}]
    assert [(m["client"], m["payment"]) for m in transactions_topic.messages()] == [(MERCHANT, record)]


def test_process_repeat_returns_the_stored_record_without_writing_or_publishing(
    client: Client, aws: Any, resources: RegionResources, transactions_topic: TopicSpy
) -> None:
    first = post(client, "/process", payment())
    items_after_first = table_items(aws, resources)

    second = post(client, "/process", payment())

    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json_body == first.json_body
    assert table_items(aws, resources) == items_after_first
    assert len(transactions_topic.messages()) == 1


def test_process_refuses_a_reused_transaction_id_with_different_details(
    client: Client, transactions_topic: TopicSpy
) -> None:
    post(client, "/process", payment())

    response = post(client, "/process", payment(amount="99.00"))

    assert response.status_code == 409
    assert response.json_body["errors"][0]["field"] == "transaction_id"
    assert len(transactions_topic.messages()) == 1


def test_get_payment_returns_the_record_or_404(client: Client) -> None:
    created = post(client, "/process", payment()).json_body

    found = client.http.get("/payments/txn-100")
    missing = client.http.get("/payments/txn-404")

    assert (found.status_code, found.json_body) == (200, created)
    assert missing.status_code == 404
    assert missing.json_body["errors"][0]["field"] == "transaction_id"


def test_customer_history_is_newest_first_and_paginated(client: Client) -> None:
    for n in range(5):
        post(client, "/process", payment(transaction_id=f"txn-{n}", amount=f"{n + 1}.00"))
    post(client, "/process", payment(transaction_id="other", customer_id="someone-else"))

    pages, cursor = [], None
    while True:
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        response = client.http.get(f"/customers/cust-7/payments{query}")
        assert response.status_code == 200
        pages.append([p["transaction_id"] for p in response.json_body["payments"]])
        cursor = response.json_body["next_cursor"]
        if cursor is None:
            break

    seen = [txn for page in pages for txn in page]
    assert sorted(seen) == [f"txn-{n}" for n in range(5)]
    assert all(len(page) <= 2 for page in pages)
    timestamps = [client.http.get(f"/payments/{txn}").json_body["timestamp"] for txn in seen]
    assert timestamps == sorted(timestamps, reverse=True)


@pytest.mark.parametrize(
    "query", ["?limit=0", "?limit=101", "?limit=abc", "?cursor=garbage", "?cursor=e30", "?colour=red"]
)
def test_customer_history_rejects_bad_paging_parameters(client: Client, query: str) -> None:
    response = client.http.get(f"/customers/cust-7/payments{query}")

    assert response.status_code == 400
    assert response.json_body["errors"][0]["field"]


def test_a_cursor_from_another_customer_is_refused(client: Client) -> None:
    for n in range(3):
        post(client, "/process", payment(transaction_id=f"txn-{n}"))
    cursor = client.http.get("/customers/cust-7/payments?limit=1").json_body["next_cursor"]

    response = client.http.get(f"/customers/cust-8/payments?cursor={cursor}")

    assert response.status_code == 400


def test_health_reports_the_region_when_the_table_answers(client: Client) -> None:
    response = client.http.get("/health")

    assert response.status_code == 200
    assert response.json_body == {"status": "healthy", "region": "us-east-1"}


def test_health_is_503_naming_the_queue_when_it_is_gone(
    client: Client, aws: Any, resources: RegionResources
) -> None:
    aws("sqs").delete_queue(QueueUrl=resources.payment_queue_url)

    response = client.http.get("/health")

    assert (response.status_code, response.json_body["failing"]) == (503, "payment queue")


def test_health_results_are_cached_for_a_few_seconds(
    client: Client, aws: Any, resources: RegionResources
) -> None:
    assert client.http.get("/health").status_code == 200
    aws("dynamodb").delete_table(TableName=resources.payments_table)

    # Route 53's checkers poll every 30 s from many places; within the cache window the
    # dependencies are not read again.
    assert client.http.get("/health").status_code == 200


def test_health_is_503_when_the_table_is_gone(client: Client, aws: Any, resources: RegionResources) -> None:
    aws("dynamodb").delete_table(TableName=resources.payments_table)

    response = client.http.get("/health")

    assert response.status_code == 503
    assert response.json_body["status"] == "unhealthy"
    assert response.json_body["failing"] == "payments table"


def test_a_card_number_is_rejected_and_appears_in_no_response_or_log(
    client: Client, payment_logs: CapturedLogs, capsys: pytest.CaptureFixture[str]
) -> None:
    pan = "4111111111111111"

    responses = [
        post(client, "/validate", payment(card_number=pan)),
        post(client, "/process", payment(description=f"card {pan}")),
        post(client, "/validate", '{"broken": "' + pan + '"'),
    ]

    assert [r.status_code for r in responses] == [422, 422, 400]
    assert all(pan not in r.body.decode() for r in responses)
    output = capsys.readouterr()
    logs = payment_logs.lines()
    assert len(logs) >= 2
    assert pan not in "\n".join(logs) + output.out + output.err


def test_an_amount_reads_the_same_in_every_answer_once_dynamodb_has_trimmed_it(
    client: Client, aws: Any, resources: RegionResources
) -> None:
    # GIVEN a payment of 12.50 USD processed and stored (the local AWS trims numbers as DynamoDB does)
    created = post(client, "/process", payment(transaction_id="txn-trim", amount="12.50"))
    [stored] = [i for i in table_items(aws, resources) if "customer_id" in i]
    assert stored["amount"] == {"N": "12.5"}

    # WHEN it is processed again and read back, THEN every answer says 12.50
    repeated = post(client, "/process", payment(transaction_id="txn-trim", amount="12.50"))
    read = client.http.get("/payments/txn-trim")
    history = client.http.get("/customers/cust-7/payments")
    assert (created.status_code, repeated.status_code) == (201, 200)
    amounts = {created.json_body["amount"], repeated.json_body["amount"], read.json_body["amount"]}
    amounts |= {p["amount"] for p in history.json_body["payments"]}
    assert amounts == {"12.50"}


# Printable Latin-1: what an HTTP/1.1 header value can carry.
header_texts = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=300
)


@pytest.mark.parametrize("path", ["/validate", "/process"])
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    headers=st.fixed_dictionaries(
        {},
        optional={
            "Idempotency-Key": st.sampled_from(["0", "k-1", " ", "ä", "x" * 256]) | header_texts,
            "X-Correlation-Id": header_texts,
            "Content-Type": st.sampled_from(
                ["application/json", "application/json; charset=utf-8", "text/plain"]
            )
            | header_texts,
        },
    )
)
def test_any_header_values_get_an_answer_or_a_named_4xx(
    client: Client, path: str, headers: dict[str, str]
) -> None:
    response = client.http.post(path, headers=headers, body=json.dumps(payment(transaction_id="txn-headers")))

    answer = json.loads(response.body)
    assert response.status_code < 500, (headers, response.status_code, answer)
    if response.status_code >= 400:
        assert answer["errors"] and all(p["field"] and p["message"] for p in answer["errors"])


def set_own_flag(aws: Any, flag: RegionFlag) -> None:
    aws("ssm").put_parameter(
        Name=ResourceNames(SUFFIX).in_service_parameter, Value=flag.to_text(), Type="String", Overwrite=True
    )


@pytest.mark.parametrize("path", ["/validate", "/process"])
def test_a_draining_region_refuses_new_payments_with_a_retryable_503_and_keeps_nothing(
    client: Client, aws: Any, resources: RegionResources, path: str
) -> None:
    set_own_flag(aws, RegionFlag(in_service=True, reason="switchover", accepting=False))

    response = post(client, path, payment(transaction_id=f"txn-drain{path.replace('/', '-')}"))

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.headers["X-Region-Draining"] == "true"
    [error] = response.json_body["errors"]
    assert "not taking payments" in error["message"]
    assert queued(aws, resources) == [] and table_items(aws, resources) == []
    # Health still passes: clients keep coming here until the switchover moves them.
    assert client.http.get("/health").status_code == 200


def test_a_region_whose_flag_cannot_be_read_still_takes_payments(
    client: Client, aws: Any, resources: RegionResources
) -> None:
    aws("ssm").delete_parameter(Name=ResourceNames(SUFFIX).in_service_parameter)

    response = post(client, "/process", payment(transaction_id="txn-flagless"))

    assert response.status_code == 201


@pytest.mark.parametrize("consistency", ["strong", "eventual"])
def test_every_answer_says_the_payments_tables_consistency(
    resources: RegionResources, monkeypatch: pytest.MonkeyPatch, consistency: str
) -> None:
    # The merchants' client waits out the replication window before a retry elsewhere only when
    # the deployment does not say it is strongly consistent: a 4xx, a 201 and /health all say it.
    monkeypatch.setenv(EnvVar.PAYMENTS_CONSISTENCY, consistency)
    from app import app
    from tests.conftest import MerchantClient

    with MerchantClient(app) as client:
        answers = [
            post(client, "/process", payment()),
            post(client, "/process", payment(amount="-1")),
            client.http.get("/health"),
        ]

    assert [a.headers["Payment-Consistency"] for a in answers] == [consistency] * 3
    assert [a.status_code for a in answers] == [201, 422, 200]
