"""``payments-dr webhooks``: a client's endpoints, their backlog, re-enabling one, replaying what was given up
or a time range of the client's events.

An endpoint's backlog is what waits for it in a region's webhook dead-letter queue: deliveries
whose 3 days of retries ran out, each with its event and event id. Replaying sends those back to
the deliveries queue as a fresh first attempt (the event id, and so the ``webhook-id``, unchanged)
before removing them from the dead-letter queue, so a replay interrupted half-way leaves a copy
at most, which the merchant drops by its id. Other endpoints' deliveries stay where they are.
A replay of a time range (``--since``) is the one a merchant asks through the API: a job in one
region's webhook queue that sends every event of the client stored in the range, from the table.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from chalicelib.adapters.messages import SqsWebhookQueue
from chalicelib.adapters.webhook_endpoints import DynamoWebhookEndpoints
from chalicelib.errors import (
    ValidationFailed,
    WebhookEndpointChanged,
    WebhookEndpointDisabled,
    WebhookEndpointNotFound,
)
from chalicelib.webhook_delivery import Delivery
from chalicelib.webhook_endpoints import revise, start_replay
from chalicelib.webhooks import WebhookEndpoint
from operations.targets import Target

RECEIVE_BATCH = 10
# Long enough to look at a batch; what is not taken returns to the queue at once after.
IN_FLIGHT_SECONDS = 30


class UnknownEndpoint(LookupError):
    """The client has no endpoint with that id."""


def _store(target: Target, region: str) -> DynamoWebhookEndpoints:
    return DynamoWebhookEndpoints(
        table_name=target.names.webhook_endpoints_table, client=lambda: target.client("dynamodb", region)
    )


@dataclass(frozen=True)
class EndpointBacklog:
    """One endpoint as the operator sees it: its state and what waits for it in each region."""

    endpoint: WebhookEndpoint
    given_up: dict[str, int]

    def line(self) -> str:
        e = self.endpoint
        state = "enabled" if e.enabled else f"DISABLED ({e.disabled_reason})"
        failing = (
            f", failing for {time.time() - e.failing_since:.0f} s" if e.failing_since is not None else ""
        )
        waiting = ", ".join(f"{region} {n}" for region, n in self.given_up.items())
        return f"{e.endpoint_id}  {e.url}  {state}{failing}; given up, waiting to be replayed: {waiting}"


def backlog(target: Target, client: str) -> list[EndpointBacklog]:
    """Each of ``client``'s endpoints (read in the primary) with its dead-lettered deliveries per region."""
    endpoints = _store(target, target.primary_region).endpoints_of(client)
    waiting = {region: _given_up(target, region, client) for region in target.regions}
    return [
        EndpointBacklog(e, {region: waiting[region].get(e.endpoint_id, 0) for region in target.regions})
        for e in endpoints
    ]


def _given_up(target: Target, region: str, client: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _, delivery in _peek(target, region):
        if delivery.client == client:
            counts[delivery.endpoint_id] = counts.get(delivery.endpoint_id, 0) + 1
    return counts


def _peek(target: Target, region: str, *, release: bool = True) -> list[tuple[dict[str, Any], Delivery]]:
    """Every delivery in the region's webhook DLQ, taken (invisible for a while); ``release``:
    each returned to the queue at once."""
    sqs = target.client("sqs", region)
    url = target.queue_url(region, target.names.webhook_dlq)
    seen: dict[str, tuple[dict[str, Any], Delivery]] = {}
    while True:
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=RECEIVE_BATCH, VisibilityTimeout=IN_FLIGHT_SECONDS
        ).get("Messages", [])
        fresh = [m for m in messages if m["MessageId"] not in seen]
        for message in messages:
            try:
                seen.setdefault(message["MessageId"], (message, Delivery.from_json(message["Body"])))
            except (ValueError, TypeError):
                pass  # not a delivery: left alone
        if not fresh:
            break
    if release:
        for message, _ in seen.values():
            _release(sqs, url, message)
    return list(seen.values())


def _release(sqs: Any, url: str, message: dict[str, Any]) -> None:
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)


def enable(target: Target, client: str, endpoint_id: str) -> WebhookEndpoint:
    """Put a disabled endpoint back in service (its failures forgotten); it replicates to the peer."""
    try:
        return revise(
            _store(target, target.primary_region),
            client,
            endpoint_id,
            lambda e: e._replace(enabled=True, disabled_reason="", failing_since=None),
        )
    except WebhookEndpointNotFound:
        raise UnknownEndpoint(f"{client} has no webhook endpoint {endpoint_id}") from None
    except WebhookEndpointChanged:
        raise RuntimeError(f"{endpoint_id} kept changing; run the command again") from None


@dataclass(frozen=True)
class ReplayReport:
    """What a replay found for the endpoint in one region, and what it sent back."""

    region: str
    found: int
    replayed: int
    dry_run: bool

    def summary(self) -> str:
        if self.dry_run:
            return f"{self.region}: {self.found} delivery(ies) given up; dry run, nothing replayed"
        return (
            f"{self.region}: replayed {self.replayed} of {self.found} delivery(ies), each with its event id"
        )


def replay(
    target: Target, region: str, client: str, endpoint_id: str, *, dry_run: bool = False
) -> ReplayReport:
    """Send ``endpoint_id``'s given-up deliveries in ``region`` back for delivery, from their first attempt."""
    sqs = target.client("sqs", region)
    dlq_url = target.queue_url(region, target.names.webhook_dlq)
    queue_url = target.queue_url(region, target.names.webhook_queue)
    taken = _peek(target, region, release=False)
    mine = [(m, d) for m, d in taken if d.client == client and d.endpoint_id == endpoint_id]
    for message, delivery in taken:
        if (message, delivery) not in mine or dry_run:
            _release(sqs, dlq_url, message)
    if dry_run:
        return ReplayReport(region, len(mine), 0, dry_run=True)
    now = time.time()
    for message, delivery in mine:
        # Sent before it is deleted: an interruption leaves a copy at most, with the same event id.
        again = delivery._replace(attempt=1, first_attempt_at=now, due_at=now)
        sqs.send_message(QueueUrl=queue_url, MessageBody=again.to_json())
        sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
    return ReplayReport(region, len(mine), len(mine), dry_run=False)


def replay_range(
    target: Target, region: str, client: str, endpoint_id: str, since: str, until: str | None = None
) -> str:
    """Queue in ``region`` a replay of ``client``'s events stored from ``since`` to ``until`` (ISO 8601;
    now if None) to ``endpoint_id``; what was queued, in one line."""
    queue = SqsWebhookQueue(
        queue_url=target.queue_url(region, target.names.webhook_queue),
        dlq_url=target.queue_url(region, target.names.webhook_dlq),
        client=lambda: target.client("sqs", region),
    )
    body = {"from": since, **({"to": until} if until else {})}
    try:
        queued = start_replay(_store(target, region), queue, client, endpoint_id, body)
    except WebhookEndpointNotFound:
        raise UnknownEndpoint(f"{client} has no webhook endpoint {endpoint_id}") from None
    except (ValidationFailed, WebhookEndpointDisabled) as error:
        raise InvalidReplay(str(error)) from None
    return (
        f"{region}: replay {queued['replay_id']} queued: {client}'s events from {queued['from']} to "
        f"{queued['to']} to {endpoint_id}, each with its event id"
    )


class InvalidReplay(ValueError):
    """A replay that cannot start: a bad range, or a disabled endpoint."""


def render(backlogs: list[EndpointBacklog], client: str) -> str:
    if not backlogs:
        return f"{client} has no webhook endpoints"
    return "\n".join(b.line() for b in backlogs)
