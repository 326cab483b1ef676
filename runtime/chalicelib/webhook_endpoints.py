"""The API function's use cases for a client's webhook endpoints: register, list, delete, rotate, replay.

Every call names the client the request's key belongs to; another client's endpoint is the 404 of
an id never used. A new or rotated secret is in that one answer only: it is stored, never logged,
never listed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from chalicelib.errors import (
    ValidationFailed,
    WebhookEndpointChanged,
    WebhookEndpointDisabled,
    WebhookEndpointNotFound,
)
from chalicelib.observability import logger
from chalicelib.ports import WebhookEndpointStore, WebhookQueue
from chalicelib.services import Services
from chalicelib.webhook_replay import ReplayJob, new_replay_id, validate_replay
from chalicelib.webhooks import (
    ROTATION_OVERLAP_SECONDS,
    WebhookEndpoint,
    iso_time,
    registered,
    validate_endpoint,
    with_rotated_secret,
)


def register(services: Services, client: str, body: Any) -> dict[str, Any]:
    """``POST /webhook-endpoints``: the new endpoint and its signing secret, shown this once."""
    store = services.webhook_endpoints
    request, errors = validate_endpoint(
        body,
        resolve=services.resolve,
        existing=len(store.endpoints_of(client)),
        local_stage=services.settings.local_stage,
    )
    if request is None:
        raise ValidationFailed(errors)
    endpoint = registered(request, client=client, now=time.time())
    store.add(endpoint)
    logger.info("webhook endpoint registered", extra={"endpoint_id": endpoint.endpoint_id})
    return {**endpoint.public(), "secret": endpoint.secrets.current}


def endpoints(services: Services, client: str) -> dict[str, Any]:
    """``GET /webhook-endpoints``: the client's endpoints, without their secrets."""
    return {"endpoints": [e.public() for e in services.webhook_endpoints.endpoints_of(client)]}


def delete(services: Services, client: str, endpoint_id: str) -> None:
    """``DELETE /webhook-endpoints/{id}``: the endpoint receives nothing more."""
    if not services.webhook_endpoints.remove(client, endpoint_id):
        raise WebhookEndpointNotFound()
    logger.info("webhook endpoint deleted", extra={"endpoint_id": endpoint_id})


def rotate_secret(services: Services, client: str, endpoint_id: str) -> dict[str, Any]:
    """``POST /webhook-endpoints/{id}/rotate-secret``: a new secret; the former one signs beside it
    for the overlap, then stops."""
    rotated = revise(
        services.webhook_endpoints, client, endpoint_id, lambda e: with_rotated_secret(e, now=time.time())
    )
    logger.info("webhook endpoint secret rotated", extra={"endpoint_id": endpoint_id})
    return {
        **rotated.public(),
        "secret": rotated.secrets.current,
        "previous_secret_signs_for_seconds": ROTATION_OVERLAP_SECONDS,
    }


def replay(services: Services, client: str, endpoint_id: str, body: Any) -> dict[str, Any]:
    """``POST /webhook-endpoints/{id}/replay``: the client's events stored in the range are sent to
    the endpoint again, each with its own ``webhook-id``, by a job on the webhook queue
    (:mod:`chalicelib.webhook_replay`); the answer (202) says what was queued, before any is sent."""
    return start_replay(services.webhook_endpoints, services.webhook_queue, client, endpoint_id, body)


def start_replay(
    store: WebhookEndpointStore, queue: WebhookQueue, client: str, endpoint_id: str, body: Any
) -> dict[str, Any]:
    """Queue the replay ``body`` asks for (``{"from", "to"}``) of ``client``'s events to ``endpoint_id``.

    The API's route and the operator's command (``payments-dr webhooks replay --since``) both start
    one here. A later replay of the endpoint supersedes this one. Raises ValidationFailed (the
    range), WebhookEndpointNotFound, or WebhookEndpointDisabled (it receives nothing until enabled).
    """
    now = time.time()
    requested, errors = validate_replay(body, now=now)
    if requested is None:
        raise ValidationFailed(errors)
    replay_id = new_replay_id(now)

    def started(endpoint: WebhookEndpoint) -> WebhookEndpoint:
        if not endpoint.enabled:
            raise WebhookEndpointDisabled(endpoint.disabled_reason)
        return endpoint._replace(replay_id=replay_id)

    revise(store, client, endpoint_id, started)
    queue.send(ReplayJob(client, endpoint_id, replay_id, *requested).to_json())
    logger.info("webhook replay queued", extra={"endpoint_id": endpoint_id, "replay_id": replay_id})
    return {
        "replay_id": replay_id,
        "endpoint_id": endpoint_id,
        "from": iso_time(requested.since / 1000),
        "to": iso_time(requested.until / 1000),
        "status": "queued",
    }


# Reads of an endpoint that another change overtook before it is given up (a 409).
REVISE_ATTEMPTS = 3


def revise(
    store: WebhookEndpointStore,
    client: str,
    endpoint_id: str,
    change: Callable[[WebhookEndpoint], WebhookEndpoint],
) -> WebhookEndpoint:
    """``change`` of ``client``'s endpoint, written over the version it was made from.

    A concurrent change of the same endpoint wins, and this one is made again from what it wrote.
    Raises WebhookEndpointNotFound, or WebhookEndpointChanged if it kept being overtaken.
    """
    for _ in range(REVISE_ATTEMPTS):
        current = store.endpoint(client, endpoint_id)
        if current is None:
            raise WebhookEndpointNotFound()
        revised = change(current)._replace(version=current.version + 1)
        if store.replace(revised, read_version=current.version):
            return revised
    raise WebhookEndpointChanged()
