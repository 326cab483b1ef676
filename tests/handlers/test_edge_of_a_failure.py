"""The moment a failure begins, from the merchant's side: what a request in flight leaves behind,
and whether an error answer says if anything was stored.

- A request whose function dies holds its ``Idempotency-Key`` no longer than the in-flight
  deadline, and a retry in the meantime is told how long is left (``Retry-After``).
- A 5xx says ``Payment-Outcome: none`` only when nothing was stored, so only then may the client
  send the payment to the other region at once.
- A draining region still replays what it already answered.
- Work that was done is answered even when its key's record cannot be saved.
"""

from __future__ import annotations

import json
import time
from functools import partial
from typing import Any

import pytest
from botocore.exceptions import ClientError
from chalice.test import Client

from chalicelib import idempotency, sdk
from chalicelib.errors import DependencyUnavailable, RequestInProgress
from chalicelib.idempotency import IdempotentRequests, StoredResponse
from chalicelib.regions import RegionFlag
from chalicelib.services import get_services
from chalicelib.settings import Settings
from localenv.provision import RegionResources
from tests.conftest import REGION
from tests.handlers.test_http_routes import set_own_flag
from tests.handlers.test_write_path import CrashAfterTheClaim

PAYMENT = {"transaction_id": "txn-edge", "customer_id": "cust-9", "amount": "12.00", "currency": "USD"}


def post(client: Client, body: dict[str, Any], key: str | None = None, path: str = "/process") -> Any:
    headers = {"Content-Type": "application/json", **({"Idempotency-Key": key} if key else {})}
    return client.http.post(path, headers=headers, body=json.dumps(body))


def keyed_requests(*, deadline: float = 10.0, failing: str | None = None) -> IdempotentRequests:
    """The Idempotency-Key store as the API builds it; ``failing``: a DynamoDB operation that fails."""

    def dynamodb() -> Any:
        made = sdk.make_client("dynamodb", REGION)
        if failing is not None:

            def fail(model: Any, **_: Any) -> None:
                if model.name == failing:
                    raise ClientError(
                        {"Error": {"Code": "ThrottlingException", "Message": "injected"}}, failing
                    )

            made.meta.events.register("before-call", fail)
        return made

    store = partial(
        idempotency.idempotency_persistence,
        table_name=Settings.from_environment().idempotency_table,
        client=dynamodb,
    )
    return IdempotentRequests(store, deadline_seconds=deadline)


def test_a_request_that_dies_holds_its_key_only_until_the_deadline(resources: RegionResources) -> None:
    requests = keyed_requests(deadline=1.0)

    def killed() -> StoredResponse:
        # The function dies mid-request (its region lost): Powertools cannot release the key.
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        requests.run(operation="process", caller="c", key="k-died", body={"a": 1}, respond=killed)
    with pytest.raises(RequestInProgress) as blocked:
        requests.run(
            operation="process",
            caller="c",
            key="k-died",
            body={"a": 1},
            respond=lambda: StoredResponse(201, {}),
        )
    time.sleep(1.2)
    retried = requests.run(
        operation="process",
        caller="c",
        key="k-died",
        body={"a": 1},
        respond=lambda: StoredResponse(201, {"ok": 1}),
    )

    assert blocked.value.retry_after == 1
    assert retried == StoredResponse(201, {"ok": 1})


def test_a_409_in_progress_says_how_long_the_first_request_may_still_hold_the_key(
    resources: RegionResources,
) -> None:
    requests = keyed_requests(deadline=10.0)
    told: list[int | None] = []

    def first() -> StoredResponse:
        with pytest.raises(RequestInProgress) as second:
            requests.run(operation="process", caller="c", key="busy", body={"a": 1}, respond=first)
        told.append(second.value.retry_after)
        return StoredResponse(201, {})

    requests.run(operation="process", caller="c", key="busy", body={"a": 1}, respond=first)

    assert told and told[0] is not None and 9 <= told[0] <= 10


def test_work_done_is_answered_even_when_its_keys_record_cannot_be_saved(resources: RegionResources) -> None:
    requests = keyed_requests(failing="UpdateItem")  # Powertools completes a record with UpdateItem

    answer = requests.run(
        operation="process",
        caller="c",
        key="k-1",
        body={"a": 1},
        respond=lambda: StoredResponse(201, {"p": 1}),
    )

    assert answer == StoredResponse(201, {"p": 1})


def test_a_key_that_cannot_be_taken_runs_nothing_and_says_nothing_was_stored(
    resources: RegionResources,
) -> None:
    requests = keyed_requests(failing="PutItem")  # the INPROGRESS record
    ran: list[int] = []

    def respond() -> StoredResponse:
        ran.append(1)
        return StoredResponse(201, {})

    with pytest.raises(DependencyUnavailable) as failed:
        requests.run(operation="process", caller="c", key="k-2", body={"a": 1}, respond=respond)

    assert ran == [] and failed.value.committed_nothing


def test_a_claim_refused_says_nothing_was_stored_and_a_record_lost_after_it_says_unknown(
    client: Client, resources: RegionResources
) -> None:
    CrashAfterTheClaim(writes="claim").install(resources)
    refused = post(client, PAYMENT)
    CrashAfterTheClaim(writes="record").install(resources)
    after_the_claim = post(client, {**PAYMENT, "transaction_id": "txn-edge-2"})

    assert (refused.status_code, refused.headers["Payment-Outcome"]) == (503, "none")
    assert (after_the_claim.status_code, after_the_claim.headers["Payment-Outcome"]) == (503, "unknown")


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
