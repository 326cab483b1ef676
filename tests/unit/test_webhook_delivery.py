"""One event to a client's endpoints: who gets it, the signatures it carries, what an answer decides."""

from __future__ import annotations

import time
from collections.abc import Mapping

import pytest
from standardwebhooks.webhooks import Webhook

from chalicelib.webhook_delivery import Delivery, attempt, deliveries_for
from chalicelib.webhooks import (
    DISABLE_AFTER_FAILING_SECONDS,
    AddressRefused,
    Outcome,
    SigningSecrets,
    WebhookEndpoint,
    new_secret,
)
from tests.fakes import InMemoryWebhookEndpoints

NOW = 1_900_000_000.0
EVENT = {"id": "evt_42", "event": "payment.processed", "client": "merchant-a", "payment": {"amount": "9.50"}}


def endpoint(client: str, endpoint_id: str, **changes: object) -> WebhookEndpoint:
    made = WebhookEndpoint(
        client=client,
        endpoint_id=endpoint_id,
        url=f"https://{client}.example/hooks",
        events=("payment.processed", "payment.rejected"),
        secrets=SigningSecrets(new_secret()),
        created_at=NOW - 100,
    )
    return made._replace(**changes)  # type: ignore[arg-type]


class Sender:
    """Answers each send with the next status (None: no answer), and keeps what it was given."""

    def __init__(self, *answers: int | None | Exception) -> None:
        self.answers = list(answers)
        self.sent: list[tuple[str, dict[str, str], str]] = []

    def send(self, url: str, headers: Mapping[str, str], body: str) -> int | None:
        self.sent.append((url, dict(headers), body))
        answer = self.answers.pop(0) if self.answers else 204
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def store() -> InMemoryWebhookEndpoints:
    found = InMemoryWebhookEndpoints()
    for made in (
        endpoint("merchant-a", "we_a1"),
        endpoint("merchant-a", "we_a2", events=("payment.rejected",)),
        endpoint("merchant-a", "we_a3", enabled=False, disabled_reason="answered 410 Gone"),
        endpoint("merchant-b", "we_b1"),
    ):
        found.add(made)
    return found


def test_an_event_goes_to_its_clients_enabled_endpoints_for_its_type_and_no_other_clients(
    store: InMemoryWebhookEndpoints,
) -> None:
    everyone = store.endpoints_of("merchant-a") + store.endpoints_of("merchant-b")

    deliveries = deliveries_for(EVENT, everyone, now=NOW)

    assert [(d.client, d.endpoint_id, d.event_id) for d in deliveries] == [("merchant-a", "we_a1", "evt_42")]
    assert Delivery.from_json(deliveries[0].to_json()) == deliveries[0]


def test_an_attempt_is_signed_with_the_event_id_and_verifies_with_the_library(
    store: InMemoryWebhookEndpoints,
) -> None:
    now = time.time()  # the library refuses a delivery five minutes from its own clock
    [delivery] = deliveries_for(EVENT, store.endpoints_of("merchant-a"), now=now)
    sender = Sender(204)

    done = attempt(delivery, store=store, sender=sender, now=now)

    [(url, headers, body)] = sender.sent
    secret = store.endpoints_of("merchant-a")[0].secrets.current
    assert done.decision.outcome is Outcome.DELIVERED and url == "https://merchant-a.example/hooks"
    assert headers["webhook-id"] == "evt_42"
    assert Webhook(secret).verify(body, headers) == EVENT  # as a receiver checks it


def test_during_a_rotation_both_secrets_sign(store: InMemoryWebhookEndpoints) -> None:
    [first] = [e for e in store.endpoints_of("merchant-a") if e.endpoint_id == "we_a1"]
    store.replace(first._replace(secrets=first.secrets.rotated(NOW - 10), version=2), read_version=1)
    [delivery] = deliveries_for(EVENT, store.endpoints_of("merchant-a"), now=NOW)
    sender = Sender(204)

    attempt(delivery, store=store, sender=sender, now=NOW)

    assert len(sender.sent[0][1]["webhook-signature"].split(" ")) == 2


def test_a_failure_is_retried_with_the_same_event_id_and_the_endpoint_remembers_when_it_began(
    store: InMemoryWebhookEndpoints,
) -> None:
    [delivery] = deliveries_for(EVENT, store.endpoints_of("merchant-a"), now=NOW)

    failed = attempt(delivery, store=store, sender=Sender(503), now=NOW)
    assert failed.retry is not None
    again = attempt(failed.retry, store=store, sender=Sender(200), now=NOW + 5)

    assert failed.decision.outcome is Outcome.RETRY and failed.retry.event_id == "evt_42"
    assert failed.retry.attempt == 2 and failed.decision.next_attempt_at == NOW + 5
    assert again.decision.outcome is Outcome.DELIVERED
    assert store.endpoints_of("merchant-a")[0].failing_since is None


def test_a_410_disables_the_endpoint_at_once_and_it_then_receives_nothing(
    store: InMemoryWebhookEndpoints,
) -> None:
    [delivery] = deliveries_for(EVENT, store.endpoints_of("merchant-a"), now=NOW)

    gone = attempt(delivery, store=store, sender=Sender(410), now=NOW)
    later = attempt(delivery, store=store, sender=(sender := Sender()), now=NOW + 1)

    disabled = store.endpoints_of("merchant-a")[0]
    assert gone.decision.outcome is Outcome.GONE and gone.retry is None
    assert not disabled.enabled and "410" in disabled.disabled_reason
    assert later.decision.outcome is Outcome.HELD and sender.sent == []


def test_days_of_failures_disable_it_and_an_address_refused_at_delivery_is_a_failure(
    store: InMemoryWebhookEndpoints,
) -> None:
    [first] = store.endpoints_of("merchant-a")[:1]
    store.replace(
        first._replace(failing_since=NOW - DISABLE_AFTER_FAILING_SECONDS, version=2), read_version=1
    )
    [delivery] = deliveries_for(EVENT, store.endpoints_of("merchant-a"), now=NOW)

    refused = attempt(
        delivery._replace(attempt=4),
        store=store,
        sender=Sender(AddressRefused("merchant-a.example", "a private address")),
        now=NOW,
    )

    assert refused.status is None and "private" in refused.refused
    assert refused.decision.disable and not store.endpoints_of("merchant-a")[0].enabled
