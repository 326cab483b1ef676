"""The API function's use cases for a client's webhook endpoints: register, list, delete, rotate.

Every call names the client the request's key belongs to; another client's endpoint is the 404 of
an id never used. A new or rotated secret is in that one answer only: it is stored, never logged,
never listed.
"""

from __future__ import annotations

import time
from typing import Any

from chalicelib.errors import ValidationFailed, WebhookEndpointChanged, WebhookEndpointNotFound
from chalicelib.observability import logger
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
    store = services.webhook_endpoints
    for _ in range(3):  # a concurrent change of the same endpoint: read it again
        current = _endpoint(store.endpoints_of(client), endpoint_id)
        rotated = with_rotated_secret(current, now=time.time())
        if store.replace(rotated, read_version=current.version):
            logger.info("webhook endpoint secret rotated", extra={"endpoint_id": endpoint_id})
            return {
                **rotated.public(),
                "secret": rotated.secrets.current,
                "previous_secret_signs_for_seconds": ROTATION_OVERLAP_SECONDS,
            }
    raise WebhookEndpointChanged()


def _endpoint(found: list[WebhookEndpoint], endpoint_id: str) -> WebhookEndpoint:
    for endpoint in found:
        if endpoint.endpoint_id == endpoint_id:
            return endpoint
    raise WebhookEndpointNotFound()
