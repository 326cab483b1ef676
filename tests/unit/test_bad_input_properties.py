"""Properties of the payment routes under arbitrary input, in process over in-memory ports.

Whatever the body (any JSON, broken JSON, deep nesting, oversized, unicode, huge numbers,
negative zero, NaN, exponent notation), ``POST /validate`` and ``POST /process`` answer either
success or a 4xx JSON error naming each problem; never a 5xx, and nothing is queued or written
for a rejected request.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from chalice.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib import local_api_keys
from chalicelib.adapters.peer_api import StaticPeerApi
from chalicelib.adapters.webhook_sender import HttpWebhookSender
from chalicelib.regions import Cached
from chalicelib.services import Services, use_services
from chalicelib.settings import Settings
from chalicelib.webhooks import loopback_resolver
from tests.fakes import (
    InMemoryKeyBindings,
    InMemoryPaymentRepository,
    InMemoryRegionControl,
    InMemorySweepLedger,
    InMemoryWebhookEndpoints,
    RecordingNotifications,
    RecordingOpsNotices,
    RecordingQueue,
    RecordingWebhookQueue,
    StaticClientDirectory,
    StaticProbes,
)

PROPERTY_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
# One client, admitted as API Gateway would admit it (key value -> key id -> client).
API_KEY, API_KEY_ID, CLIENT = "unit-test-key-00000000001", "unit-key-id", "unit-merchant"
JSON_HEADERS = {"Content-Type": "application/json", "x-api-key": API_KEY}


class Ports:
    """The in-memory services the app runs on in these tests."""

    def __init__(self) -> None:
        self.repository = InMemoryPaymentRepository()
        self.queue = RecordingQueue()

    def services(self) -> Services:
        settings_ = Settings.from_environment({"AWS_REGION": "us-east-1", "LOCAL_API_GATEWAY": "1"})
        return Services(
            settings=settings_,
            repository=self.repository,
            queue=self.queue,
            notifications=RecordingNotifications(),
            key_bindings=InMemoryKeyBindings(),
            region_control=InMemoryRegionControl(),
            probes=StaticProbes(),
            ops_notices=RecordingOpsNotices(),
            health_cache=Cached(time.monotonic),
            flag_cache=Cached(time.monotonic),
            peer_api=StaticPeerApi("http://127.0.0.1:9", lambda: "unused"),
            clients=StaticClientDirectory({API_KEY_ID: CLIENT}),
            sweeps=InMemorySweepLedger(),
            webhook_endpoints=InMemoryWebhookEndpoints(),
            resolve=loopback_resolver,
            webhook_queue=RecordingWebhookQueue(),
            webhook_sender=HttpWebhookSender(resolve=loopback_resolver, allow_loopback=True),
        )


@pytest.fixture
def app_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    from app import app

    # The API Gateway of these tests: it admits one key, and names its id to the function.
    monkeypatch.setattr(local_api_keys, "key_ring", lambda *_: lambda: {API_KEY: API_KEY_ID})

    with Client(app) as client:
        yield client
    use_services(None)


def answer(client: Client, path: str, raw: bytes | str) -> tuple[int, Any, Ports]:
    ports = Ports()
    use_services(ports.services())
    response = client.http.post(path, headers=JSON_HEADERS, body=raw)
    return response.status_code, json.loads(response.body), ports


def assert_named_4xx_with_no_side_effects(status: int, body: Any, ports: Ports) -> None:
    assert 400 <= status < 500, (status, body)
    assert isinstance(body["errors"], list) and body["errors"]
    for problem in body["errors"]:
        assert isinstance(problem["field"], str) and problem["field"]
        assert isinstance(problem["message"], str) and problem["message"]
    assert ports.queue.sent == []
    assert ports.repository.records == {}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=20), children, max_size=5)
    ),
    max_leaves=20,
)
amount_texts = st.one_of(
    st.sampled_from(
        [
            "-0",
            "-0.0",
            "0",
            "0.00",
            "NaN",
            "Infinity",
            "-1",
            "1e400",
            "1E+2",
            "1e-400",
            "12.345",
            "١٢٣",
            "12,50",
            " 12.50",
            "0x10",
            "9" * 40,
            "1" * 33,
            "1_000",
        ]
    ),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    st.text(max_size=40),
)
# Raw JSON number tokens: exponent notation, negative zero, huge and tiny magnitudes, NaN.
amount_tokens = st.one_of(
    st.sampled_from(["-0", "-0.0", "1e400", "1E+2", "1e-400", "NaN", "-Infinity", "1" + "0" * 400, "0.1e1"]),
    st.integers().map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)
identifiers = st.one_of(
    st.text(max_size=70), st.integers(), st.sampled_from(["txn-1", "ä", "\u202e", "a" * 65])
)
currencies = st.one_of(st.sampled_from(["USD", "usd", "JPY", "BHD", "XXX", "US", "€€€"]), st.text(max_size=4))


@st.composite
def payment_like(draw: st.DrawFn) -> str:
    """A body shaped like a payment with every field drawn from nasty values (sometimes left out)."""
    fields = {
        "transaction_id": draw(identifiers),
        "customer_id": draw(identifiers),
        "currency": draw(currencies),
        "description": draw(st.text(max_size=300)),
        "metadata": draw(st.dictionaries(st.text(max_size=50), json_values, max_size=3)),
    }
    kept = {k: v for k, v in fields.items() if draw(st.booleans()) or k in ("transaction_id", "currency")}
    text = json.dumps(kept)
    amount = draw(st.one_of(amount_texts.map(json.dumps), amount_tokens))
    return text[:-1] + (", " if kept else "") + f'"amount": {amount}' + "}"


@pytest.mark.parametrize("path", ["/validate", "/process"])
@PROPERTY_SETTINGS
@given(raw=payment_like())
def test_payment_shaped_bodies_are_accepted_exactly_or_rejected_by_name(
    app_client: Client, path: str, raw: str
) -> None:
    status, body, ports = answer(app_client, path, raw)

    if status in (200, 201, 202):
        amount = Decimal(body["amount"])
        assert amount > 0 and amount.is_finite()
        assert len(ports.queue.sent) + len(ports.repository.records) == 1
    else:
        assert_named_4xx_with_no_side_effects(status, body, ports)


@pytest.mark.parametrize("path", ["/validate", "/process"])
@PROPERTY_SETTINGS
@given(document=json_values)
def test_any_json_document_gets_a_named_4xx_unless_it_is_a_payment(
    app_client: Client, path: str, document: Any
) -> None:
    status, body, ports = answer(app_client, path, json.dumps(document))

    assert_named_4xx_with_no_side_effects(status, body, ports)


@PROPERTY_SETTINGS
@given(raw=st.binary(max_size=300))
def test_arbitrary_bytes_get_a_named_4xx(app_client: Client, raw: bytes) -> None:
    status, body, ports = answer(app_client, "/validate", raw)

    assert_named_4xx_with_no_side_effects(status, body, ports)


@pytest.mark.parametrize("depth", [33, 1000, 30_000])
def test_deep_nesting_is_refused_before_parsing(app_client: Client, depth: int) -> None:
    status, body, ports = answer(app_client, "/validate", "[" * depth + "]" * depth)

    assert status == 400
    assert_named_4xx_with_no_side_effects(status, body, ports)


def test_an_oversized_body_is_a_413(app_client: Client) -> None:
    padded = json.dumps({"transaction_id": "t", "description": "x" * 70_000})

    status, body, ports = answer(app_client, "/validate", padded)

    assert status == 413
    assert_named_4xx_with_no_side_effects(status, body, ports)


def get(client: Client, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any, Ports]:
    ports = Ports()
    use_services(ports.services())
    response = client.http.get(path, headers={"x-api-key": API_KEY, **(headers or {})})
    return response.status_code, json.loads(response.body), ports


# What a URL can carry: any text in a query value or a path segment, percent-encoded.
query_texts = st.one_of(
    st.sampled_from(
        ["²", "١٢", "0", "-1", "100", "101", "1e2", "0x10", " 5", "5 ", "", "99999999999999999999"]
    ),
    st.text(max_size=40),
)


@PROPERTY_SETTINGS
@given(
    customer=query_texts,
    params=st.dictionaries(
        st.sampled_from(["limit", "cursor", "other", "", "LIMIT"]) | st.text(max_size=10),
        query_texts,
        max_size=3,
    ),
)
def test_any_query_string_or_path_gets_a_page_or_a_named_4xx(
    app_client: Client, customer: str, params: dict[str, str]
) -> None:
    path = f"/customers/{quote(customer, safe='') or 'c'}/payments?{urlencode(params)}"

    status, body, _ = get(app_client, path)

    assert status == 200 or (400 <= status < 500 and body["errors"]), (path, status, body)


@PROPERTY_SETTINGS
@given(transaction_id=query_texts)
def test_any_transaction_id_in_the_path_gets_a_payment_or_a_named_404(
    app_client: Client, transaction_id: str
) -> None:
    status, body, _ = get(app_client, f"/payments/{quote(transaction_id, safe='') or 'x'}")

    assert status == 404 and body["errors"][0]["field"] == "transaction_id", (status, body)


@pytest.mark.parametrize("limit", ["²", "¹⁰", "١٢", "߁", "1 ", "+5", "0", "101"])
def test_a_page_size_that_is_not_ascii_digits_in_range_is_a_400_not_a_500(
    app_client: Client, limit: str
) -> None:
    status, body, _ = get(app_client, f"/customers/c1/payments?{urlencode({'limit': limit})}")

    assert (status, body["errors"][0]["field"]) == (400, "limit")


@pytest.mark.parametrize("path", ["/validate", "/process"])
@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (
            '{"transaction_id":"t-1","customer_id":"c","amount":"1.00","amount":"999999.00","currency":"USD"}',
            "amount",
        ),
        (
            '{"transaction_id":"t-1","customer_id":"c","amount":"1.00","currency":"USD","metadata":{"a":"1","a":"2"}}',
            "a",
        ),
        (
            '{"transaction_id":"t-1","transaction_id":"t-2","customer_id":"c","amount":"1.00","currency":"USD"}',
            "transaction_id",
        ),
    ],
)
def test_a_key_repeated_anywhere_in_the_body_is_a_400_naming_it(
    app_client: Client, path: str, raw: str, key: str
) -> None:
    status, body, ports = answer(app_client, path, raw)

    assert status == 400
    assert body["errors"] == [{"field": key, "message": "appears more than once; send each field once"}]
    assert_named_4xx_with_no_side_effects(status, body, ports)
