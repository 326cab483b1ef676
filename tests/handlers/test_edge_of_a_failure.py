"""The moment a failure begins, from the merchant's side: what a request in flight leaves behind,
and whether an error answer says if anything was stored.

- A request whose function dies holds nothing: its retry, at once and in either region, meets the
  payment's claim (a keyed ``/process`` makes two sequential writes, and no marker).
- A 5xx says ``Payment-Outcome: none`` only when nothing was stored, so only then may the client
  send the payment to the other region at once.
- A draining region still replays what it already answered.
- Work that was done is answered even when its key cannot be bound.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from chalice.test import Client

from bench.write_chains import WriteTimeline, sequential_writes
from chalicelib import sdk
from chalicelib.adapters.key_bindings import DynamoKeyBindings
from chalicelib.adapters.payments_table import DynamoPaymentRepository
from chalicelib.regions import RegionFlag
from chalicelib.services import get_services, use_services
from chalicelib.settings import Settings
from localenv.provision import RegionResources
from tests.conftest import REGION
from tests.handlers.test_http_routes import set_own_flag
from tests.handlers.test_write_path import CrashAfterTheClaim

PAYMENT = {"transaction_id": "txn-edge", "customer_id": "cust-9", "amount": "12.00", "currency": "USD"}


def post(client: Client, body: dict[str, Any], key: str | None = None, path: str = "/process") -> Any:
    headers = {"Content-Type": "application/json", **({"Idempotency-Key": key} if key else {})}
    return client.http.post(path, headers=headers, body=json.dumps(body))


class FunctionKilled(BaseException):
    """The API function dying mid-request: nothing after this point of it runs."""


def dynamodb_failing(operation: str, *, table: str, kill_at_sort_key_above_zero: bool = False) -> Any:
    """A DynamoDB client whose ``operation`` on ``table`` fails (throttled); or, for a payment's
    record (a sort key above the claim's 0), kills the function."""
    made = sdk.make_client("dynamodb", REGION)

    def fail(model: Any, params: dict[str, Any], **_: Any) -> None:
        if model.name != operation or params.get("TableName") != table:
            return
        if kill_at_sort_key_above_zero:
            if int(params["Item"]["timestamp"]["N"]) > 0:
                raise FunctionKilled
            return
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "injected"}}, operation)

    made.meta.events.register("before-parameter-build.dynamodb", fail)
    return made


def install_bindings(operation: str) -> None:
    table = Settings.from_environment().idempotency_table
    failing = dynamodb_failing(operation, table=table)
    use_services(
        get_services()._replace(key_bindings=DynamoKeyBindings(table_name=table, client=lambda: failing))
    )


def test_a_request_killed_after_its_claim_blocks_no_retry_of_its_key(
    client: Client, aws: Any, resources: RegionResources
) -> None:
    table = resources.payments_table
    killing = dynamodb_failing("PutItem", table=table, kill_at_sort_key_above_zero=True)
    use_services(
        get_services()._replace(repository=DynamoPaymentRepository(table_name=table, client=lambda: killing))
    )
    with pytest.raises(FunctionKilled):
        post(client, PAYMENT, key="order-died")
    use_services(None)

    retried = post(client, PAYMENT, key="order-died")

    # No marker to wait out: the retry, made at once, meets the claim and completes the record.
    assert retried.status_code in (200, 201)
    assert retried.json_body["transaction_id"] == PAYMENT["transaction_id"]
    listed = client.http.get(f"/customers/{PAYMENT['customer_id']}/payments").json_body["payments"]
    assert [p["transaction_id"] for p in listed] == [PAYMENT["transaction_id"]]


def test_a_keyed_process_makes_at_most_two_sequential_writes(
    client: Client, resources: RegionResources
) -> None:
    timeline = WriteTimeline()
    session = sdk.sdk_session()
    timeline.attach(session)
    sdk.use_session(session)
    use_services(None)
    try:
        answers, per_request = [], []
        for n in range(5):
            answers.append(post(client, {**PAYMENT, "transaction_id": f"txn-seq-{n}"}, key=f"seq-{n}"))
            per_request.append(sequential_writes(timeline.take()))
    finally:
        sdk.use_session(None)
        use_services(None)

    assert [a.status_code for a in answers] == [201] * 5
    # The claim, then the record and the key's binding together.
    assert per_request == [2] * 5


def test_work_done_is_answered_even_when_its_key_cannot_be_bound(client: Client) -> None:
    install_bindings("PutItem")

    first = post(client, PAYMENT, key="k-unbound")
    retried = post(client, PAYMENT, key="k-unbound")

    assert first.status_code == 201
    # The key was never bound: its retry finds the payment by its transaction id.
    assert (retried.status_code, retried.json_body) == (200, first.json_body)


def test_a_key_that_cannot_be_read_runs_nothing_and_says_nothing_was_stored(
    client: Client, aws: Any, resources: RegionResources
) -> None:
    install_bindings("GetItem")

    refused = post(client, PAYMENT, key="k-unread")
    use_services(None)
    found = client.http.get(f"/payments/{PAYMENT['transaction_id']}")

    assert (refused.status_code, refused.headers["Payment-Outcome"]) == (503, "none")
    assert found.status_code == 404


def test_a_claim_refused_says_nothing_was_stored_and_a_record_lost_after_it_is_answered_as_made(
    client: Client, resources: RegionResources
) -> None:
    CrashAfterTheClaim(writes="claim").install(resources)
    refused = post(client, PAYMENT)
    CrashAfterTheClaim(writes="record").install(resources)
    after_the_claim = post(client, {**PAYMENT, "transaction_id": "txn-edge-2"})

    assert (refused.status_code, refused.headers["Payment-Outcome"]) == (503, "none")
    assert after_the_claim.status_code == 201


def test_a_draining_region_replays_what_it_answered_and_refuses_only_new_work(
    client: Client, aws: Any, resources: RegionResources
) -> None:
    first = post(client, PAYMENT, key="order-edge")
    set_own_flag(aws, RegionFlag(in_service=True, reason="switchover", accepting=False))
    get_services().flag_cache.clear()

    replayed = post(client, PAYMENT, key="order-edge")
    new = post(client, {**PAYMENT, "transaction_id": "txn-edge-new"}, key="order-new")

    assert first.status_code == 201
    assert (replayed.status_code, replayed.headers.get("Idempotent-Replayed")) == (201, "true")
    assert replayed.json_body == first.json_body
    assert new.status_code == 503 and new.headers["X-Region-Draining"] == "true"
    assert new.headers["Payment-Outcome"] == "none"
