"""Delivering a client's events to its webhook endpoints: which endpoints get an event, and one attempt.

An announced event (``payment.processed``, ``payment.rejected``: the notifier's message, with its
stable id) becomes one :class:`Delivery` for each enabled endpoint of *that event's client*
subscribed to its type; no other client's endpoint is ever considered. An attempt signs the
event's body with the endpoint's secrets in use (two during a rotation), sends it to an address
checked just before, and decides from the answer (:func:`chalicelib.webhooks.decide`): delivered,
retried later with the same ``webhook-id``, given up to the dead-letter queue, or the endpoint
disabled (410, or days of failures). What a disabled endpoint misses stays replayable from the
payments table.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple

from chalicelib.ports import WebhookEndpointStore, WebhookSender
from chalicelib.webhooks import (
    AddressRefused,
    Decision,
    Outcome,
    WebhookEndpoint,
    decide,
    signature_headers,
)


class Delivery(NamedTuple):
    """One event for one endpoint, and where it stands in its schedule."""

    client: str
    endpoint_id: str
    event_id: str
    event: str
    body: str
    attempt: int = 1
    first_attempt_at: float = 0.0
    # When this attempt is due (a retry waits its turn in the queue, 15 minutes a hop at most).
    due_at: float = 0.0

    def to_json(self) -> str:
        return json.dumps(self._asdict(), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Delivery:
        return cls(**json.loads(text))


def deliveries_for(
    announced: Mapping[str, Any], endpoints: list[WebhookEndpoint], *, now: float
) -> list[Delivery]:
    """The deliveries of one announced event: one per enabled endpoint of its client that takes its
    type, each due at once (its first attempt at ``now``).

    ``endpoints`` are the event's client's (the caller reads them by the event's ``client``); any
    other client's endpoint among them is left out all the same.
    """
    client, event = announced["client"], announced["event"]
    body = json.dumps(announced, separators=(",", ":"), sort_keys=True)
    return [
        Delivery(
            client=client,
            endpoint_id=endpoint.endpoint_id,
            event_id=announced["id"],
            event=event,
            body=body,
            first_attempt_at=now,
            due_at=now,
        )
        for endpoint in endpoints
        if endpoint.client == client and endpoint.enabled and event in endpoint.events
    ]


class Attempted(NamedTuple):
    """What one attempt decided, the delivery to make next (a retry), and why it failed."""

    decision: Decision
    retry: Delivery | None = None
    status: int | None = None
    refused: str = ""


HELD = Decision(Outcome.HELD)


def attempt(
    delivery: Delivery,
    *,
    store: WebhookEndpointStore,
    sender: WebhookSender,
    now: float,
    time_scale: float = 1.0,
) -> Attempted:
    """Make attempt ``delivery.attempt``, and record on the endpoint what it showed.

    An endpoint deleted or disabled since the event was queued receives nothing (the event stays
    replayable). The endpoint records when it started failing (cleared by a success), and is
    disabled on a 410 or once it has failed for days.
    """
    endpoint = store.endpoint(delivery.client, delivery.endpoint_id)
    if endpoint is None or not endpoint.enabled:
        return Attempted(HELD)
    headers = signature_headers(delivery.event_id, delivery.body, endpoint.secrets.in_use(now), now)
    refused = ""
    try:
        status = sender.send(endpoint.url, headers, delivery.body)
    except AddressRefused as error:
        status, refused = None, str(error)
    decision = decide(
        status, attempt=delivery.attempt, now=now, failing_since=endpoint.failing_since, time_scale=time_scale
    )
    _record(store, endpoint, decision, now)
    retry = (
        delivery._replace(attempt=delivery.attempt + 1, due_at=decision.next_attempt_at or now)
        if decision.outcome is Outcome.RETRY and not decision.disable
        else None
    )
    return Attempted(decision, retry, status, refused)


def _record(store: WebhookEndpointStore, endpoint: WebhookEndpoint, decision: Decision, now: float) -> None:
    if decision.outcome is Outcome.DELIVERED:
        changed = endpoint._replace(failing_since=None) if endpoint.failing_since is not None else None
    elif decision.disable:
        reason = "answered 410 Gone" if decision.outcome is Outcome.GONE else "failed every delivery for days"
        changed = endpoint._replace(enabled=False, disabled_reason=reason)
    elif endpoint.failing_since is None:
        changed = endpoint._replace(failing_since=now)
    else:
        changed = None
    if changed is not None:
        # Over the version read: a concurrent change (a rotation, another attempt) wins, and the
        # next attempt records this again if it still holds.
        store.replace(changed._replace(version=endpoint.version + 1), read_version=endpoint.version)
