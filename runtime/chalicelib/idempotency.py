"""``Idempotency-Key`` on the payment routes: a binding, not a lock. Pure Python, no AWS.

A client that sends ``Idempotency-Key`` with a request may resend it as often as it likes, in
either region:

- same key, same body: the first answer again (``Idempotent-Replayed: true``), and nothing is
  queued or written a second time;
- same key, different body: 422, and nothing happens;
- a request that was refused (4xx/5xx) binds nothing, so the key can be used again;
- keys expire :data:`~chalicelib.schema.IdempotencyKeys.TTL_SECONDS` after first use, and are
  scoped to the route and to the client (whichever of its keys sent the request).

A key is *bound* once the work it asked for is done: "this key, for this caller and route, was
used for this body, about this transaction id, and was answered with this status". Nothing is
written before the work, so there is no in-progress marker: a request that dies (its function
killed, its region lost) blocks nobody, and its retry, here or in the other region, meets the
payment's own claim, which is what makes the payment once. A keyed ``/process`` therefore makes
at most two sequential writes: the claim, then its record and the binding at the same time; a
keyed ``/validate`` one, the binding, after the message is queued.

How a keyed request goes, in order:

1. the binding is read (consistently): bound to another body, 422; bound to this body, the first
   answer is given again, before a draining region would refuse new work;
2. the work: ``/process`` claims and records the payment, ``/validate`` queues it;
3. the binding, for work answered with success.

What this gives up against a lock, knowingly: two requests with one key and *different* bodies
arriving at the same moment both find the key free; each does its own work (each was asked for)
and the key stays bound to the first one bound. A ``/validate`` that dies after queueing and
before binding queues again on its retry; the processor makes the payment once all the same.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any, NamedTuple

from chalicelib.errors import FieldError, MalformedRequest
from chalicelib.schema import IdempotencyKeys

HEADER_FIELD = IdempotencyKeys.HEADER
# Binding ids in the idempotency table: a prefix per route, then a digest of the caller and key.
BINDING_PREFIX = "payments.{operation}.key#"


class StoredResponse(NamedTuple):
    """A payment route's answer: its status, its JSON body, and whether it gives a first answer again."""

    status: int
    body: dict[str, Any]
    replayed: bool = False


def checked_key(value: str | None) -> str | None:
    """The client's idempotency key, or None when it sent none; refuses unusable keys."""
    if value is None:
        return None
    if not 1 <= len(value) <= IdempotencyKeys.MAX_LENGTH or not value.isprintable() or not value.isascii():
        raise MalformedRequest(
            [
                FieldError(
                    HEADER_FIELD, f"must be 1 to {IdempotencyKeys.MAX_LENGTH} printable ASCII characters"
                )
            ]
        )
    return value


class KeyBinding(NamedTuple):
    """What one ``Idempotency-Key`` of a route was bound to at its first successful use."""

    binding_id: str
    body_digest: str
    transaction_id: str
    status: int
    expires_at: int

    def is_live(self, now: float) -> bool:
        """Whether the binding still holds (keys live a day; DynamoDB's TTL removes them later)."""
        return now < self.expires_at


def binding_id(operation: str, caller: str, key: str) -> str:
    """The stored id of ``caller``'s ``key`` on route ``operation``: a digest, so no key is stored in clear."""
    digest = hashlib.sha256(json.dumps([caller, key]).encode()).hexdigest()
    return BINDING_PREFIX.format(operation=operation) + digest


def body_digest(document: Any) -> str:
    """A digest of the request's body as parsed: the same JSON gives the same digest.

    Object keys are sorted; numbers (parsed as ``Decimal``) are kept as written, so ``12.5`` and
    ``12.50`` are different bodies, as Powertools' payload validation has always told them apart.
    """

    def exact(value: Any) -> str:
        if isinstance(value, Decimal):
            return f"decimal:{value}"
        raise TypeError(type(value).__name__)

    text = json.dumps(document, sort_keys=True, separators=(",", ":"), default=exact)
    return hashlib.sha256(text.encode()).hexdigest()


def new_binding(
    operation: str, caller: str, key: str, *, document: Any, transaction_id: str, status: int, now: float
) -> KeyBinding:
    """The binding a successful keyed request leaves, alive for the keys' lifetime."""
    return KeyBinding(
        binding_id=binding_id(operation, caller, key),
        body_digest=body_digest(document),
        transaction_id=transaction_id,
        status=status,
        expires_at=int(now) + IdempotencyKeys.TTL_SECONDS,
    )
