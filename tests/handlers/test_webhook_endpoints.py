"""A client's webhook endpoints through the API: register, list, rotate, delete; refusals name the field.

The resolver is stubbed: no test resolves a real name or connects to an address it refuses.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.services import Services, get_services, use_services
from chalicelib.webhooks import MAX_ENDPOINTS_PER_CLIENT, ROTATION_OVERLAP_SECONDS, loopback_resolver
from localenv.provision import RegionResources
from tests.conftest import MERCHANT, CapturedLogs

JSON = {"Content-Type": "application/json"}
PUBLIC = "93.184.215.14"


class StubResolver:
    """Answers from a table, and records every name it was asked for."""

    def __init__(self, answers: dict[str, Sequence[str]]) -> None:
        self.answers = dict(answers)
        self.asked: list[str] = []

    def __call__(self, host: str) -> Sequence[str]:
        self.asked.append(host)
        if host not in self.answers:
            raise OSError("no such name")
        return self.answers[host]


@pytest.fixture
def resolver(resources: RegionResources) -> Iterator[StubResolver]:
    stub = StubResolver({"hooks.merchant.example": [PUBLIC], "inside.merchant.example": ["10.0.0.5"]})
    use_services(None)
    use_services(get_services()._replace(resolve=stub))
    yield stub
    use_services(None)


def local_stage() -> None:
    """As ``make run`` serves the API: loopback receivers over plain http, no name resolved."""
    services: Services = get_services()
    use_services(
        services._replace(settings=services.settings._replace(local_stage=True), resolve=loopback_resolver)
    )


def register(client: Client, url: str, events: list[str] | None = None) -> Any:
    body = {"url": url, "events": events or ["payment.processed", "payment.rejected"]}
    return client.http.post("/webhook-endpoints", headers=JSON, body=json.dumps(body))


def test_an_endpoint_is_registered_listed_rotated_and_deleted_and_its_secret_shown_only_when_made(
    client: Client, resolver: StubResolver, payment_logs: CapturedLogs
) -> None:
    made = register(client, "https://hooks.merchant.example/payments")
    endpoint_id, secret = made.json_body["id"], made.json_body["secret"]
    listed = client.http.get("/webhook-endpoints")
    rotated = client.http.post(f"/webhook-endpoints/{endpoint_id}/rotate-secret")
    deleted = client.http.delete(f"/webhook-endpoints/{endpoint_id}")
    after = client.http.get("/webhook-endpoints")

    assert made.status_code == 201 and secret.startswith("whsec_")
    assert made.json_body["url"] == "https://hooks.merchant.example/payments"
    assert made.json_body["status"] == "enabled"
    assert listed.status_code == 200
    assert [e["id"] for e in listed.json_body["endpoints"]] == [endpoint_id]
    assert "secret" not in json.dumps(listed.json_body)
    assert rotated.status_code == 200 and rotated.json_body["secret"] not in ("", secret)
    assert rotated.json_body["previous_secret_signs_for_seconds"] == ROTATION_OVERLAP_SECONDS
    assert deleted.status_code == 204 and after.json_body == {"endpoints": []}
    assert client.http.delete(f"/webhook-endpoints/{endpoint_id}").status_code == 404
    logged = "\n".join(payment_logs.lines())
    assert endpoint_id in logged and secret not in logged and rotated.json_body["secret"] not in logged


def test_another_clients_endpoint_is_not_there_for_it(
    client: Client, other_client: Client, resolver: StubResolver
) -> None:
    endpoint_id = register(client, "https://hooks.merchant.example/a").json_body["id"]

    assert other_client.http.get("/webhook-endpoints").json_body == {"endpoints": []}
    assert other_client.http.delete(f"/webhook-endpoints/{endpoint_id}").status_code == 404
    assert other_client.http.post(f"/webhook-endpoints/{endpoint_id}/rotate-secret").status_code == 404
    assert [e["id"] for e in client.http.get("/webhook-endpoints").json_body["endpoints"]] == [endpoint_id]


def test_a_host_resolving_to_a_private_address_is_refused_before_anything_is_stored(
    client: Client, resolver: StubResolver
) -> None:
    refused = register(client, "https://inside.merchant.example/hook")

    assert refused.status_code == 422
    [error] = refused.json_body["errors"]
    assert error["field"] == "url" and "a private address" in error["message"]
    assert resolver.asked == ["inside.merchant.example"]
    assert client.http.get("/webhook-endpoints").json_body == {"endpoints": []}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "http://hooks.merchant.example/h", "events": ["payment.processed"]}, "url"),
        ({"url": "https://hooks.merchant.example/h", "events": ["payment.refunded"]}, "events"),
        ({"url": "https://hooks.merchant.example/h"}, "events"),
        ({"events": ["payment.processed"]}, "url"),
        ([1, 2], "body"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(
    client: Client, resolver: StubResolver, body: Any, field: str
) -> None:
    answer = client.http.post("/webhook-endpoints", headers=JSON, body=json.dumps(body))

    assert answer.status_code == 422
    assert [e["field"] for e in answer.json_body["errors"]] == [field]


def test_plain_http_to_a_loopback_receiver_only_in_the_local_stage(
    client: Client, resolver: StubResolver
) -> None:
    deployed = register(client, "http://127.0.0.1:9000/hook")
    local_stage()
    local = register(client, "http://127.0.0.1:9000/hook")
    named = register(client, "https://hooks.merchant.example/hook")

    assert deployed.status_code == 422 and local.status_code == 201
    # Locally no name is resolved at all: only loopback receivers can be registered.
    assert named.status_code == 422 and "resolves no names" in named.json_body["errors"][0]["message"]


def test_a_client_has_a_bounded_number_of_endpoints(client: Client, resolver: StubResolver) -> None:
    made = [
        register(client, f"https://hooks.merchant.example/{n}").status_code
        for n in range(MAX_ENDPOINTS_PER_CLIENT)
    ]
    one_more = register(client, "https://hooks.merchant.example/extra")

    assert made == [201] * MAX_ENDPOINTS_PER_CLIENT
    assert one_more.status_code == 422 and f"at most {MAX_ENDPOINTS_PER_CLIENT}" in one_more.body.decode()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "from"),
        ({"from": "yesterday"}, "from"),
        ({"from": "2026-12-01T00:00:00"}, "from"),
        ({"from": 1764547200}, "from"),
        ({"from": "2026-10-01T00:00:00Z", "to": "2026-11-15T00:00:00Z"}, "to"),
        ({"from": "2026-11-02T00:00:00Z", "to": "2026-11-01T00:00:00+00:00"}, "from"),
        ({"from": "2026-11-01T00:00:00Z", "until": "2026-11-02T00:00:00Z"}, "until"),
        ([1, 2], "body"),
    ],
)
def test_a_replay_of_a_bad_range_is_a_422_naming_the_field(
    client: Client, resolver: StubResolver, body: Any, field: str
) -> None:
    endpoint_id = register(client, "https://hooks.merchant.example/a").json_body["id"]

    answer = client.http.post(f"/webhook-endpoints/{endpoint_id}/replay", headers=JSON, body=json.dumps(body))

    assert answer.status_code == 422, answer.json_body
    assert [e["field"] for e in answer.json_body["errors"]] == [field]


def test_a_replay_is_the_callers_own_and_refused_for_a_disabled_endpoint(
    client: Client, other_client: Client, resolver: StubResolver
) -> None:
    endpoint_id = register(client, "https://hooks.merchant.example/a").json_body["id"]
    week = {"from": "2026-11-01T00:00:00Z", "to": "2026-11-08T00:00:00Z"}
    path = f"/webhook-endpoints/{endpoint_id}/replay"

    assert other_client.http.post(path, headers=JSON, body=json.dumps(week)).status_code == 404
    queued = client.http.post(path, headers=JSON, body=json.dumps(week))
    assert queued.status_code == 202
    assert (queued.json_body["from"], queued.json_body["to"]) == (week["from"], week["to"])

    store = get_services().webhook_endpoints
    endpoint = store.endpoint(MERCHANT, endpoint_id)
    assert endpoint is not None
    store.replace(
        endpoint._replace(enabled=False, disabled_reason="answered 410 Gone", version=endpoint.version + 1),
        read_version=endpoint.version,
    )
    refused = client.http.post(path, headers=JSON, body=json.dumps(week))
    assert refused.status_code == 409 and "410 Gone" in refused.json_body["errors"][0]["message"]
