"""The API function's use cases for a client's webhook endpoints: register, list, delete, rotate.

Every call names the client the request's key belongs to; another client's endpoint is the 404 of
an id never used. A new or rotated secret is in that one answer only: it is stored, never logged,
never listed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from chalicelib.errors import ValidationFailed, WebhookEndpointChanged, WebhookEndpointNotFound
from chalicelib.observability import logger
from chalicelib.ports import WebhookEndpointStore
from chalicelib.services import Services
from chalicelib.webhooks import (
    ROTATION_OVERLAP_SECONDS,
    WebhookEndpoint,
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
