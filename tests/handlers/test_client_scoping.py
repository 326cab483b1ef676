"""Each client sees only its own payments: ids, reads, cursors, Idempotency-Keys and events.

Two merchants (``tests.conftest``) call the same app with their own keys, as API Gateway would
admit them; the app finds each key's client in the region's client directory.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from chalice.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.names import Handler, ResourceNames
from localenv.events import sqs_lambda_record
from localenv.provision import RegionResources
from tests.conftest import MERCHANT, OTHER_MERCHANT, SUFFIX

JSON = {"Content-Type": "application/json"}


def payment(transaction_id: str, amount: str = "10.00", customer: str = "cust-shared") -> dict[str, str]:
    return {"transaction_id": transaction_id, "customer_id": customer, "amount": amount, "currency": "USD"}


def post(client: Client, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
    return client.http.post(path, headers={**JSON, **(headers or {})}, body=json.dumps(body))


def test_the_same_transaction_id_from_two_clients_is_two_payments(
    client: Client, other_client: Client
) -> None:
    mine = post(client, "/process", payment("order-1", "10.00"))
    theirs = post(other_client, "/process", payment("order-1", "77.00"))

    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert client.http.get("/payments/order-1").json_body == mine.json_body
    assert other_client.http.get("/payments/order-1").json_body == theirs.json_body
    # The conflict rules hold within each client's own ids.
    assert post(client, "/process", payment("order-1", "10.00")).status_code == 200
    assert post(other_client, "/process", payment("order-1", "10.00")).status_code == 409


def test_another_clients_payment_is_the_same_404_as_an_id_never_used(
    client: Client, other_client: Client
) -> None:
    post(other_client, "/process", payment("theirs-1"))

    theirs = client.http.get("/payments/theirs-1")
    never_used = client.http.get("/payments/never-used-1")

    assert (theirs.status_code, never_used.status_code) == (404, 404)
    assert theirs.body == never_used.body
    assert other_client.http.get("/payments/theirs-1").status_code == 200


def test_a_customers_history_lists_only_the_callers_payments(client: Client, other_client: Client) -> None:
    post(client, "/process", payment("mine-1", "1.00"))
    post(other_client, "/process", payment("theirs-1", "2.00"))
    post(other_client, "/process", payment("mine-1", "3.00"))

    mine = client.http.get("/customers/cust-shared/payments").json_body["payments"]
    theirs = other_client.http.get("/customers/cust-shared/payments").json_body["payments"]

    assert [(p["transaction_id"], p["amount"]) for p in mine] == [("mine-1", "1.00")]
    assert sorted((p["transaction_id"], p["amount"]) for p in theirs) == [
        ("mine-1", "3.00"),
        ("theirs-1", "2.00"),
    ]


def test_a_cursor_made_for_one_client_is_a_400_for_another(client: Client, other_client: Client) -> None:
    for n in range(3):
        post(client, "/process", payment(f"page-{n}"))
        post(other_client, "/process", payment(f"page-{n}"))
    cursor = client.http.get("/customers/cust-shared/payments?limit=1").json_body["next_cursor"]

    replayed = other_client.http.get(f"/customers/cust-shared/payments?limit=1&cursor={cursor}")

    assert cursor is not None
    assert replayed.status_code == 400
    assert replayed.json_body["errors"][0]["field"] == "cursor"
    assert client.http.get(f"/customers/cust-shared/payments?limit=1&cursor={cursor}").status_code == 200


def test_an_idempotency_key_is_the_callers_own(client: Client, other_client: Client) -> None:
    key = {"Idempotency-Key": "shared-key-1"}

    mine = post(client, "/process", payment("idem-1", "5.00"), key)
    theirs = post(other_client, "/process", payment("idem-2", "6.00"), key)

    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert theirs.json_body["transaction_id"] == "idem-2"
    assert "Idempotent-Replayed" not in theirs.headers


def test_validated_payments_are_processed_as_their_clients_own(
    client: Client, other_client: Client, aws: Any, resources: RegionResources
) -> None:
    assert post(client, "/validate", payment("queued-1", "10.00")).status_code == 202
    assert post(other_client, "/validate", payment("queued-1", "20.00")).status_code == 202

    messages = aws("sqs").receive_message(
        QueueUrl=resources.payment_queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )["Messages"]
    records = [sqs_lambda_record(m, "arn:aws:sqs:us-east-1:123456789012:q", "us-east-1") for m in messages]
    processed = client.lambda_.invoke(Handler.PAYMENT_PROCESSOR, {"Records": records})

    assert processed.payload == {"batchItemFailures": []}
    assert sorted(m["MessageAttributes"]["client"]["StringValue"] for m in messages) == [
        MERCHANT,
        OTHER_MERCHANT,
    ]
    assert client.http.get("/payments/queued-1").json_body["amount"] == "10.00"
    assert other_client.http.get("/payments/queued-1").json_body["amount"] == "20.00"


def test_a_message_that_names_no_client_is_rejected_not_processed_nor_retried(
    client: Client, other_client: Client, aws: Any, resources: RegionResources
) -> None:
    event = client.events.generate_sqs_event(message_bodies=[json.dumps(payment("orphan-1"))], queue_name="q")

    response = client.lambda_.invoke(Handler.PAYMENT_PROCESSOR, event)

    assert response.payload == {"batchItemFailures": []}
    assert client.http.get("/payments/orphan-1").status_code == 404
    assert other_client.http.get("/payments/orphan-1").status_code == 404
    items = aws("dynamodb").scan(TableName=resources.payments_table)["Items"]
    assert [item["errors"]["L"][0]["M"]["field"]["S"] for item in items] == ["(message)"]


def test_events_name_their_client_so_a_subscriber_can_filter_on_it(
    client: Client, other_client: Client, aws: Any, resources: RegionResources, notifier: Any
) -> None:
    sqs = aws("sqs")
    url = sqs.create_queue(QueueName="merchant-a-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws("sns").subscribe(
        TopicArn=resources.transaction_topic_arn,
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"RawMessageDelivery": "true", "FilterPolicy": json.dumps({"client": [MERCHANT]})},
    )
    post(client, "/process", payment("evt-1", "1.00"))
    post(other_client, "/process", payment("evt-1", "2.00"))

    notifier.deliver()
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])

    bodies = [json.loads(m["Body"]) for m in received.get("Messages", [])]
    assert [(b["client"], b["payment"]["amount"]) for b in bodies] == [(MERCHANT, "1.00")]


def test_a_key_of_no_client_is_refused_and_writes_nothing(
    client: Client, aws: Any, resources: RegionResources
) -> None:
    # A key made by hand in API Gateway, in a plan, that payments-dr never registered.
    names = ResourceNames(SUFFIX)
    apigateway = aws("apigateway")
    key = apigateway.create_api_key(
        name=names.client_api_key("rogue"), value="rogue-key-000000000000000000001", enabled=True
    )
    plan = apigateway.create_usage_plan(name=names.client_usage_plan("rogue"))
    apigateway.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")

    response = post(client, "/process", payment("rogue-1"), {"x-api-key": "rogue-key-000000000000000000001"})

    assert response.status_code == 403
    assert response.json_body["errors"][0]["field"] == "x-api-key"
    assert aws("dynamodb").scan(TableName=resources.payments_table)["Items"] == []


# ------------------------------------------------------------------ any interleaving of two clients
CLIENTS = ("a", "b")
operations = st.lists(
    st.tuples(
        st.sampled_from(CLIENTS),
        st.sampled_from(["process", "get", "history"]),
        st.sampled_from(["t0", "t1", "t2"]),
        st.sampled_from(["c0", "c1"]),
        st.sampled_from(["1.00", "2.00"]),
        st.sampled_from([None, "k0", "k1"]),
    ),
    min_size=1,
    max_size=12,
)


class ClientModel:
    """What one client was told: its payments by transaction id, and its stored Idempotency-Keys."""

    def __init__(self) -> None:
        self.payments: dict[str, dict[str, Any]] = {}
        self.keys: dict[str, tuple[dict[str, str], int, dict[str, Any]]] = {}

    def expect_process(self, body: dict[str, str], key: str | None) -> tuple[int, dict[str, Any] | None]:
        """The status (and body, when known) this client's /process of ``body`` must get."""
        if key is not None and key in self.keys:
            first_body, status, answer = self.keys[key]
            return (status, answer) if first_body == body else (422, None)
        stored = self.payments.get(body["transaction_id"])
        if stored is None:
            return 201, None
        same = (stored["customer_id"], stored["amount"]) == (body["customer_id"], body["amount"])
        return (200, stored) if same else (409, None)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=operations)
def test_no_interleaving_of_two_clients_shows_one_the_others_payments(
    client: Client, other_client: Client, steps: list[tuple[str, str, str, str, str, str | None]]
) -> None:
    apps = {"a": client, "b": other_client}
    models = {name: ClientModel() for name in CLIENTS}
    # Fresh ids and keys per example: the examples share one local AWS.
    run = uuid.uuid4().hex[:8]
    missing = client.http.get(f"/payments/{run}-never").body

    for who, operation, txn, customer, amount, key in steps:
        app, model = apps[who], models[who]
        txn, customer = f"{run}-{txn}", f"{run}-{customer}"
        if operation == "process":
            body = payment(txn, amount, customer)
            headers = {"Idempotency-Key": f"{run}-{key}"} if key else {}
            status, expected = model.expect_process(body, headers.get("Idempotency-Key"))
            response = post(app, "/process", body, headers)
            assert response.status_code == status, (who, body, response.json_body)
            if expected is not None:
                assert response.json_body == expected
            if status == 201:
                model.payments[txn] = response.json_body
            if key and status < 300:
                model.keys.setdefault(headers["Idempotency-Key"], (body, status, response.json_body))
        elif operation == "get":
            response = app.http.get(f"/payments/{txn}")
            if txn in model.payments:
                assert (response.status_code, response.json_body) == (200, model.payments[txn])
            else:
                assert (response.status_code, response.body) == (404, missing), (who, txn)
        else:
            response = app.http.get(f"/customers/{customer}/payments?limit=100")
            own = sorted(
                (p for p in model.payments.values() if p["customer_id"] == customer),
                key=lambda p: p["transaction_id"],
            )
            assert sorted(response.json_body["payments"], key=lambda p: p["transaction_id"]) == own

    # Each client's payments are exactly those it was told succeeded.
    for who, model in models.items():
        for customer in (f"{run}-c0", f"{run}-c1"):
            listed = apps[who].http.get(f"/customers/{customer}/payments?limit=100").json_body["payments"]
            assert {p["transaction_id"] for p in listed} == {
                t for t, p in model.payments.items() if p["customer_id"] == customer
            }


# ------------------------------------------------------------------- the canary's synthetic payments
def test_the_canarys_payments_are_never_announced_and_removed_after_a_few_minutes(
    client: Client, aws: Any, resources: RegionResources, notifier: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from chalicelib import local_api_keys, observer
    from chalicelib.canary import CANARY_CUSTOMER
    from chalicelib.failover_numbers import CANARY
    from chalicelib.processing import epoch_millis
    from chalicelib.schema import CANARY_CLIENT
    from chalicelib.services import get_services
    from operations.clients import ClientRegistry
    from tests.conftest import PEER_REGION, REGION

    canary_key = "canary-key-000000000000000000000001"
    registry = ClientRegistry(names=ResourceNames(SUFFIX), regions=(REGION, PEER_REGION), client=aws)
    assert registry.create(CANARY_CLIENT, value=canary_key, for_the_stacks=True).ok
    local_api_keys.key_ring.cache_clear()
    probe = post(client, "/process", payment("canary-1", "1.00", CANARY_CUSTOMER), {"x-api-key": canary_key})
    merchants = post(client, "/process", payment("canary-1", "1.00", CANARY_CUSTOMER))
    assert (probe.status_code, merchants.status_code) == (201, 201)
    # Merchants' traffic (each region's share in payments-dr status) counts the merchant's only.
    processed = [line for line in capsys.readouterr().out.splitlines() if '"PaymentProcessed"' in line]

    announced = [json.loads(m["Message"]) for m in _published(aws, resources, notifier)]

    def unreachable(*_: Any) -> tuple[int, dict[str, str], Any]:
        raise OSError("the peer is not part of this test")

    later = epoch_millis() + CANARY.payments_kept_seconds * 1000 + 1
    observer.run_canary(get_services(), unreachable, clock=lambda: later)

    assert [(m["client"], m["payment"]["transaction_id"]) for m in announced] == [(MERCHANT, "canary-1")]
    assert len(processed) == 1
    remaining = aws("dynamodb").scan(TableName=resources.payments_table)["Items"]
    assert {item["client"]["S"] for item in remaining} == {MERCHANT}
    assert len(remaining) == 2  # the merchant's claim and record
    assert post(client, "/process", payment("canary-1", "1.00", CANARY_CUSTOMER)).status_code == 200


def _published(aws: Any, resources: RegionResources, notifier: Any) -> list[dict[str, Any]]:
    """What the notifier publishes on the transactions topic for the stream so far."""
    sqs = aws("sqs")
    url = sqs.create_queue(QueueName="every-event")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws("sns").subscribe(TopicArn=resources.transaction_topic_arn, Protocol="sqs", Endpoint=arn)
    notifier.deliver()
    return [
        json.loads(m["Body"])
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    ]
