"""Verifying the webhooks the payment service sends (the Standard Webhooks scheme).

Each delivery carries ``webhook-id`` (the event's id: the same on every retry and replay of it),
``webhook-timestamp`` (seconds since the epoch) and ``webhook-signature``: ``v1,`` and the base64
HMAC-SHA256 of ``{id}.{timestamp}.{body}`` under the endpoint's secret, one per secret while a
rotated secret still signs, separated by spaces. :func:`verify_webhook` checks them with the
``standardwebhooks`` library and refuses a delivery more than five minutes old or early, so a
captured request cannot be replayed later.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

WEBHOOK_ID_HEADER = "webhook-id"


class Headers(Protocol):
    """A request's headers: a dict, ``http.server``'s message, a framework's header mapping."""

    def items(self) -> Iterable[tuple[str, Any]]: ...


class InvalidWebhook(Exception):
    """A delivery that is not from the service: a bad, missing or stale signature. Answer it 400."""


def verify_webhook(headers: Headers, body: bytes | str, secrets: str | Iterable[str]) -> dict[str, Any]:
    """The event a delivery carries, once its signature verifies under one of ``secrets``.

    ``secrets``: the endpoint's signing secret (``whsec_...``), or several while you rotate it.
    Raises :class:`InvalidWebhook` if no secret verifies it or its timestamp is more than five
    minutes from now. The event's ``id`` is the ``webhook-id`` header: deliveries can repeat
    (a retry after a lost answer, a replay, a region's loss), so drop an id you have already handled.
    """
    candidates = [secrets] if isinstance(secrets, str) else list(secrets)
    if not candidates:
        raise InvalidWebhook("no signing secret to verify with")
    text = body.decode() if isinstance(body, bytes) else body
    plain = {str(name): str(value) for name, value in headers.items()}
    reasons = []
    for secret in candidates:
        try:
            event = Webhook(secret).verify(text, plain)
        except (WebhookVerificationError, ValueError) as error:
            # ValueError: a signature header or a secret that is not what the scheme writes.
            reasons.append(str(error) or type(error).__name__)
            continue
        if not isinstance(event, dict):
            raise InvalidWebhook("the body is not an event object")
        return event
    raise InvalidWebhook(f"signature not verified: {'; '.join(sorted(set(reasons)))}")
