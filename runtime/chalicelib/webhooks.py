"""Merchants' webhook endpoints: what may be registered, where a delivery may go, how it is signed and retried.

Pure Python, no AWS. The rules a registration and every delivery obey:

- **Where.** An endpoint is an ``https`` URL without credentials in it; plain ``http`` only to a
  loopback host, and only in the local stage (``make run``'s receivers). Its host must resolve to
  public addresses only: a private, loopback, link-local (the instance metadata service among
  them), shared, multicast or reserved address is refused, at registration and again before
  every delivery, because the name's answer can change in between. Any address of the answer
  being refused refuses the delivery (a name that answers with a public and a private address
  is how a rebinding attack starts), and a delivery connects to an address it checked.
- **What.** ``payment.processed`` and ``payment.rejected``; at most
  :data:`MAX_ENDPOINTS_PER_CLIENT` endpoints a client.
- **Signed** in the Standard Webhooks scheme with the ``standardwebhooks`` library: ``webhook-id``
  is the event's id (the same on every retry and replay), ``webhook-signature`` holds one
  signature per secret in use. A rotated secret keeps signing beside the new one for
  :data:`ROTATION_OVERLAP_SECONDS`, so a merchant can roll its receiver over in that time.
- **Retried** on the schedule of :data:`RETRY_DELAYS_SECONDS` (the Standard Webhooks reference
  schedule, extended with 10-hour waits to cover 3 days); any 2xx is delivered; ``410 Gone``
  disables the endpoint at once; an endpoint that has failed every delivery for
  :data:`DISABLE_AFTER_FAILING_SECONDS` is disabled. Events of a disabled endpoint stay replayable.
"""

from __future__ import annotations

import base64
import ipaddress
import secrets as random_secrets
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from standardwebhooks.webhooks import Webhook

from chalicelib.errors import FieldError
from chalicelib.outbox import PROCESSED_EVENT, REJECTED_EVENT

WEBHOOK_EVENTS = (PROCESSED_EVENT, REJECTED_EVENT)
MAX_ENDPOINTS_PER_CLIENT = 5
MAX_URL_LENGTH = 2048
SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
# A rotated secret signs beside its successor for a day: long enough to deploy a receiver that
# knows the new one, short enough that a leaked secret stops working soon.
ROTATION_OVERLAP_SECONDS = 24 * 3600
# Each attempt's delay after the one before: at once, 5 s, 5 min, 30 min, 2 h, 5 h, then every
# 10 h until more than 3 days have passed since the first (Stripe retries for 3 days).
RETRY_DELAYS_SECONDS: tuple[int, ...] = (0, 5, 300, 1800, 7200, 18000, *(36000,) * 7)
# A delivery waits this long for an answer before it counts as failed.
DELIVERY_TIMEOUT_SECONDS = 5.0
# An endpoint that has failed every delivery for this long is disabled (Stripe: days of failures).
DISABLE_AFTER_FAILING_SECONDS = 5 * 24 * 3600
GONE_STATUS = 410


class AddressRefused(Exception):
    """A destination the service must never connect to; ``reason`` says which kind of address."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"{host} resolves to {reason}")
        self.host = host
        self.reason = reason


# The resolver: a host name to every address it answers with (socket.getaddrinfo in production).
Resolver = Callable[[str], Sequence[str]]


def address_kind(address: str) -> str | None:
    """Why ``address`` may not be a webhook's destination, or None for a public address."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in _METADATA:
        return "the instance metadata service"
    for kind, test in (
        ("a loopback address", ip.is_loopback),
        ("a link-local address", ip.is_link_local),
        ("an unspecified address", ip.is_unspecified),
        ("a multicast address", ip.is_multicast),
        ("a private address", ip.is_private),
        ("a reserved address", ip.is_reserved),
    ):
        if test:
            return kind
    return None if ip.is_global else "an address that is not public"


_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


def checked_addresses(host: str, resolve: Resolver, *, allow_loopback: bool = False) -> list[str]:
    """Every address ``host`` resolves to, all of them allowed; else :class:`AddressRefused`.

    ``allow_loopback``: the local stage's receivers listen on loopback.
    """
    try:
        addresses = list(dict.fromkeys(resolve(host)))
    except OSError as error:
        raise AddressRefused(host, f"no address ({error or type(error).__name__})") from error
    if not addresses:
        raise AddressRefused(host, "no address")
    for address in addresses:
        kind = address_kind(address)
        if kind is not None and not (allow_loopback and kind == "a loopback address"):
            raise AddressRefused(host, kind)
    return addresses


class EndpointRequest(NamedTuple):
    """A valid ``POST /webhook-endpoints`` body."""

    url: str
    events: tuple[str, ...]


def validate_endpoint(
    body: Any, *, resolve: Resolver, existing: int, local_stage: bool = False
) -> tuple[EndpointRequest | None, list[FieldError]]:
    """The endpoint a registration asks for, or every problem with it, each naming its field.

    ``existing``: how many endpoints the client already has. The URL's host is resolved and
    every address checked before anything is stored.
    """
    if not isinstance(body, dict):
        return None, [FieldError("body", "must be a JSON object with url and events")]
    errors: list[FieldError] = []
    unknown = sorted(set(body) - {"url", "events"})
    errors += [FieldError(name, "is not a field of a webhook endpoint") for name in unknown]
    url = body.get("url")
    url_errors = _url_errors(url, resolve=resolve, local_stage=local_stage)
    errors += [FieldError("url", message) for message in url_errors]
    events = body.get("events")
    if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
        errors.append(FieldError("events", f"must be a non-empty list of: {', '.join(WEBHOOK_EVENTS)}"))
    else:
        errors += [
            FieldError("events", f"{event!r} is not an event type (one of: {', '.join(WEBHOOK_EVENTS)})")
            for event in dict.fromkeys(events)
            if event not in WEBHOOK_EVENTS
        ]
    if existing >= MAX_ENDPOINTS_PER_CLIENT:
        errors.append(
            FieldError(
                "url", f"a client has at most {MAX_ENDPOINTS_PER_CLIENT} webhook endpoints; delete one first"
            )
        )
    if errors:
        return None, errors
    assert isinstance(url, str) and isinstance(events, list)
    return EndpointRequest(url=url, events=tuple(dict.fromkeys(events))), []


def _url_errors(url: Any, *, resolve: Resolver, local_stage: bool) -> list[str]:
    if not isinstance(url, str) or not url:
        return ["must be an https URL"]
    if len(url) > MAX_URL_LENGTH:
        return [f"must be at most {MAX_URL_LENGTH} characters"]
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ["is not a URL"]
    host = parts.hostname or ""
    if not host:
        return ["has no host"]
    if parts.username or parts.password:
        return ["must not hold credentials; authenticate deliveries by their signature"]
    if parts.fragment:
        return ["must not have a fragment"]
    loopback = _is_loopback_name(host)
    if parts.scheme == "http":
        if not (local_stage and loopback):
            return ["must be https (plain http only to a loopback receiver, and only locally)"]
    elif parts.scheme != "https":
        return ["must be https"]
    if port == 0:
        return ["has no port"]
    try:
        checked_addresses(host, resolve, allow_loopback=local_stage)
    except AddressRefused as refused:
        return [f"is refused: {refused}"]
    return []


def _is_loopback_name(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def new_secret() -> str:
    """A signing secret as Standard Webhooks writes it: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(random_secrets.token_bytes(SECRET_BYTES)).decode()


class SigningSecrets(NamedTuple):
    """An endpoint's secret, and the one it replaced while that one still signs."""

    current: str
    previous: str = ""
    previous_until: float = 0.0

    def in_use(self, now: float) -> list[str]:
        """The secrets a delivery made at ``now`` is signed with: the current one first."""
        return [self.current, *([self.previous] if self.previous and now < self.previous_until else [])]

    def rotated(self, now: float, secret: str | None = None) -> SigningSecrets:
        """A new current secret; the former one signs beside it for :data:`ROTATION_OVERLAP_SECONDS`."""
        return SigningSecrets(secret or new_secret(), self.current, now + ROTATION_OVERLAP_SECONDS)


def signature_headers(event_id: str, body: str, secrets: Iterable[str], now: float) -> dict[str, str]:
    """The headers of one delivery: its event's id, when it was signed, one signature per secret."""
    when = datetime.fromtimestamp(int(now), UTC)
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(now)),
        "webhook-signature": " ".join(Webhook(secret).sign(event_id, when, body) for secret in secrets),
    }


ENDPOINT_ID_PREFIX = "we_"


def new_endpoint_id() -> str:
    """An endpoint's id: random, so two regions registering at once never pick the same one."""
    return ENDPOINT_ID_PREFIX + random_secrets.token_hex(12)


class WebhookEndpoint(NamedTuple):
    """One of a client's endpoints, as stored in both regions (its secrets never leave the service
    but once: in the answer that created or rotated them)."""

    client: str
    endpoint_id: str
    url: str
    events: tuple[str, ...]
    secrets: SigningSecrets
    created_at: float
    enabled: bool = True
    disabled_reason: str = ""
    # Raised by every change; a change is written only over the version it read.
    version: int = 1
    # When its first failed delivery since its last success was made (None: not failing).
    failing_since: float | None = None
    # The newest replay asked for (chalicelib.webhook_replay): an older one still running stops.
    replay_id: str = ""

    def public(self) -> dict[str, Any]:
        """What the API shows of the endpoint: never its secrets."""
        return {
            "id": self.endpoint_id,
            "url": self.url,
            "events": list(self.events),
            "status": "enabled" if self.enabled else "disabled",
            **({"disabled_reason": self.disabled_reason} if self.disabled_reason else {}),
            "created_at": iso_time(self.created_at),
        }


def iso_time(epoch: float) -> str:
    """``epoch`` (seconds) as the API writes a time: ISO 8601 in UTC, to the second."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def registered(request: EndpointRequest, *, client: str, now: float) -> WebhookEndpoint:
    """A new endpoint for ``client``, with a fresh id and secret."""
    return WebhookEndpoint(
        client=client,
        endpoint_id=new_endpoint_id(),
        url=request.url,
        events=request.events,
        secrets=SigningSecrets(new_secret()),
        created_at=now,
    )


def with_rotated_secret(endpoint: WebhookEndpoint, *, now: float) -> WebhookEndpoint:
    """``endpoint`` with a new secret; the one it replaces signs beside it for the overlap."""
    return endpoint._replace(secrets=endpoint.secrets.rotated(now), version=endpoint.version + 1)


def loopback_resolver(host: str) -> list[str]:
    """The local stage's resolver: loopback names and addresses only, and no DNS query at all."""
    if host == "localhost":
        return ["127.0.0.1"]
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        raise OSError(f"the local stage resolves no names but localhost ({host})") from None


class Outcome(StrEnum):
    """What a delivery attempt's answer decides."""

    DELIVERED = "delivered"
    RETRY = "retry"
    GIVE_UP = "give up"  # the schedule is spent: the event goes to the dead-letter queue
    GONE = "gone"  # 410: the endpoint is disabled at once
    HELD = "held"  # the endpoint is disabled or deleted: nothing sent, the event stays replayable


class Decision(NamedTuple):
    """The outcome of attempt ``attempt`` (1 is the first) and, for a retry, when the next one is due."""

    outcome: Outcome
    next_attempt_at: float | None = None
    disable: bool = False


def decide(
    status: int | None, *, attempt: int, now: float, failing_since: float | None, time_scale: float = 1.0
) -> Decision:
    """What to do after attempt ``attempt`` got ``status`` (None: no answer: refused, timed out, unsafe).

    ``failing_since``: when the endpoint's first failed delivery since its last success was made
    (None if this is the first). Any 2xx is delivered; 410 disables the endpoint; anything else is
    retried on the schedule, and the endpoint is disabled once it has failed for
    :data:`DISABLE_AFTER_FAILING_SECONDS`. ``time_scale``: the schedule runs that many times faster
    (the webhook drill's compressed hours; 1 everywhere else).
    """
    if status is not None and 200 <= status < 300:
        return Decision(Outcome.DELIVERED)
    if status == GONE_STATUS:
        return Decision(Outcome.GONE, disable=True)
    failing_for = now - (failing_since if failing_since is not None else now)
    disable = failing_for >= DISABLE_AFTER_FAILING_SECONDS
    if attempt >= len(RETRY_DELAYS_SECONDS):
        return Decision(Outcome.GIVE_UP, disable=disable)
    return Decision(Outcome.RETRY, now + RETRY_DELAYS_SECONDS[attempt] / time_scale, disable)


def retry_schedule() -> list[int]:
    """Seconds from the first attempt to each attempt, the first included (0)."""
    total, at = 0, []
    for delay in RETRY_DELAYS_SECONDS:
        total += delay
        at.append(total)
    return at
