"""Named failures of the payment domain; ``chalicelib.http`` maps them to HTTP in one place."""

from __future__ import annotations

from typing import NamedTuple


class FieldError(NamedTuple):
    """One problem with one field of a request; ``field`` is a dotted path into the body."""

    field: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class PaymentError(Exception):
    """Base of every failure a client can be told about."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = tuple(errors)


class MalformedRequest(PaymentError):
    """The body is not parseable JSON (or uses JSON that money cannot be, like NaN)."""


class UnsupportedMediaType(PaymentError):
    """The request body is not declared as JSON."""


class PayloadTooLarge(PaymentError):
    """The request body exceeds the size a payment can reasonably have."""


class ValidationFailed(PaymentError):
    """The body is JSON but not a valid payment; ``errors`` lists every problem found."""


class InvalidQuery(PaymentError):
    """A query-string parameter (page size, cursor) is invalid."""


class PaymentNotFound(PaymentError):
    """No payment is stored under the requested transaction id."""

    def __init__(self, transaction_id: str) -> None:
        super().__init__([FieldError("transaction_id", "no payment with this transaction_id")])


class WebhookEndpointNotFound(PaymentError):
    """The client has no webhook endpoint with the requested id (another client's is not its own)."""

    def __init__(self) -> None:
        super().__init__([FieldError("id", "no webhook endpoint of this client has this id")])


class WebhookEndpointChanged(PaymentError):
    """The endpoint kept changing while it was being changed (a rotation raced another): try again."""

    def __init__(self) -> None:
        super().__init__([FieldError("id", "the endpoint changed meanwhile; try again")])


class WebhookEndpointDisabled(PaymentError):
    """The endpoint is disabled: it receives nothing, a replay included, until it is enabled again."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            [
                FieldError(
                    "id",
                    f"the endpoint is disabled ({reason or 'by the operator'}); it receives events again "
                    "once enabled, or register a new endpoint",
                )
            ]
        )


class TransactionConflict(PaymentError):
    """The transaction id was already used for a payment with different details."""

    def __init__(self, transaction_id: str) -> None:
        super().__init__(
            [
                FieldError(
                    "transaction_id",
                    "already used for a payment with a different customer, amount or currency",
                )
            ]
        )


class UnknownClient(PaymentError):
    """The request's API key belongs to no client of the service (a key made outside ``payments-dr``)."""

    def __init__(self) -> None:
        super().__init__([FieldError("x-api-key", "belongs to no client of this service")])


class IdempotencyKeyReused(PaymentError):
    """The Idempotency-Key was already used for a request with a different body."""

    def __init__(self) -> None:
        super().__init__([FieldError("Idempotency-Key", "was already used with a different request body")])


class RegionNotAccepting(PaymentError):
    """The region is draining for a switchover: its peer takes payments once replication has caught up."""

    def __init__(self, region: str) -> None:
        super().__init__(
            [
                FieldError(
                    "(service)", f"{region} is not taking payments while they move to its peer; retry shortly"
                )
            ]
        )


class DependencyUnavailable(PaymentError):
    """An AWS dependency failed or throttled; the request may be retried later.

    ``committed_nothing``: the request is known to have stored nothing (AWS refused the write, or
    the call only read), so the client may send it to the other region at once. Otherwise the
    outcome is unknown (a write that timed out may have landed) and the client retries here.
    """

    def __init__(self, dependency: str, *, committed_nothing: bool = False) -> None:
        super().__init__([FieldError("(service)", f"{dependency} is unavailable, retry later")])
        self.dependency = dependency
        self.committed_nothing = committed_nothing
