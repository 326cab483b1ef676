"""``Idempotency-Key`` for the payment routes, on Powertools' idempotency utility.

A client that sends ``Idempotency-Key`` with a request may resend it as often as it likes:

- same key, same body: the first response is returned again (``Idempotent-Replayed: true``),
  and nothing is queued or written a second time;
- same key, different body: 422, and nothing happens;
- same key while the first request is still running: 409, with ``Retry-After`` the seconds left
  before that request's marker expires, at most
  :data:`~chalicelib.failover_numbers.IN_FLIGHT_DEADLINE_SECONDS` after it began: a request whose
  function died (its region lost) blocks a retry no longer than that, in either region;
- a request that failed (4xx/5xx) stores nothing, so the key can be used again; a request whose
  work was done but whose record could not be saved still answers with its work (a retry then
  finds the payment itself, never a second one);
- keys expire :data:`~chalicelib.names.IdempotencyKeys.TTL_SECONDS` after first use.

Keys are scoped to the route and to the client (whichever of its keys sent the request), so two
clients cannot collide on a key or read each other's responses. Record states, kept by
Powertools with one conditional write each: (none) -> INPROGRESS -> COMPLETED; an exception
deletes the INPROGRESS record; expiry is computed from stored timestamps, not from DynamoDB TTL.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from chalicelib.errors import (
    DependencyUnavailable,
    FieldError,
    IdempotencyKeyReused,
    MalformedRequest,
    RequestInProgress,
)
from chalicelib.failover_numbers import IN_FLIGHT_DEADLINE_SECONDS
from chalicelib.schema import IdempotencyKeys

HEADER_FIELD = IdempotencyKeys.HEADER


class StoredResponse(NamedTuple):
    """The part of a response that is stored and replayed: its status and JSON body."""

    status: int
    body: dict[str, Any]
    replayed: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "body": self.body}


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


class InFlightDeadline:
    """The time a request may hold its key: the invocation's remaining time, at most the deadline.

    Powertools stamps the INPROGRESS record with ``now + get_remaining_time_in_millis()``; this
    caps it, and gives one where no Lambda context exists (``chalice local``, tests).
    """

    def __init__(self, lambda_context: Any = None, seconds: float = IN_FLIGHT_DEADLINE_SECONDS) -> None:
        self._context = lambda_context
        self._millis = int(seconds * 1000)

    def get_remaining_time_in_millis(self) -> int:
        if self._context is None:
            return self._millis
        return min(self._millis, int(self._context.get_remaining_time_in_millis()))


class IdempotentRequests:
    """Runs a route's work at most once per (route, caller, key) within the key's lifetime."""

    def __init__(
        self, persistence_factory: Callable[[], Any], *, deadline_seconds: float = IN_FLIGHT_DEADLINE_SECONDS
    ) -> None:
        self._persistence_factory = persistence_factory
        self._deadline_seconds = deadline_seconds
        self._persistence: Any = None
        self._config: Any = None

    @property
    def config(self) -> Any:
        """Powertools' idempotency settings, built on first use: requests without a key never
        import the utility (or the boto3 it brings)."""
        if self._config is None:
            from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

            self._config = IdempotencyConfig(
                event_key_jmespath="[caller, key]",
                payload_validation_jmespath="body",
                raise_on_no_idempotency_key=True,
                expires_after_seconds=IdempotencyKeys.TTL_SECONDS,
                hash_function="sha256",
                response_hook=lambda response, _record: {**response, "replayed": True},
            )
        return self._config

    def _seconds_left(self, payload: dict[str, Any]) -> int | None:
        """Whole seconds before the in-progress record of ``payload`` expires (None if unknown)."""
        try:
            record = self._persistence.get_record(data=payload)
        except Exception:  # noqa: BLE001 - only the hint is lost; the 409 stands
            return None
        expiry = getattr(record, "in_progress_expiry_timestamp", None)
        if not expiry:
            return None
        return max(1, math.ceil(float(expiry) / 1000 - time.time()))

    def run(
        self,
        *,
        operation: str,
        caller: str,
        key: str | None,
        body: Any,
        respond: Callable[[], StoredResponse],
        lambda_context: Any = None,
    ) -> StoredResponse:
        """``respond()``'s answer, computed once per key; without a key, simply ``respond()``."""
        if key is None:
            return respond()
        from aws_lambda_powertools.utilities.idempotency import exceptions
        from aws_lambda_powertools.utilities.idempotency.base import IdempotencyHandler

        if self._persistence is None:
            self._persistence = self._persistence_factory()
        # An INPROGRESS record of a request that died expires within the deadline.
        self.config.register_lambda_context(InFlightDeadline(lambda_context, self._deadline_seconds))
        done: list[dict[str, Any]] = []
        failed: list[Exception] = []

        def work() -> dict[str, Any]:
            try:
                done.append(respond().to_json())
            except Exception as error:
                failed.append(error)
                raise
            return done[-1]

        payload = {"caller": caller, "key": key, "body": body}
        handler = IdempotencyHandler(
            function=work,
            function_payload=payload,
            config=self.config,
            persistence_store=self._persistence,
            key_prefix=f"payments.{operation}",
            function_args=(),
            function_kwargs={},
        )
        try:
            result = handler.handle()
        except exceptions.IdempotencyValidationError as error:
            raise IdempotencyKeyReused() from error
        except exceptions.IdempotencyAlreadyInProgressError as error:
            raise RequestInProgress(self._seconds_left(payload)) from error
        except exceptions.IdempotencyInconsistentStateError as error:
            # The first request's record changed under us while we looked; it is still being
            # settled, and a retry will see the outcome.
            raise RequestInProgress() from error
        except exceptions.IdempotencyPersistenceLayerError as error:
            if done:
                # The payment is made; only its key's record is not saved. Answering with it
                # beats a 503 that would send the caller elsewhere after the fact.
                result = done[-1]
            elif failed:
                # The work's own failure (and what it says it committed) is the answer, not the
                # record's release that failed after it.
                raise failed[-1] from error
            else:
                raise DependencyUnavailable("idempotency store", committed_nothing=True) from error
        return StoredResponse(
            status=int(result["status"]), body=result["body"], replayed=bool(result.get("replayed"))
        )


def idempotency_persistence(*, table_name: str, client: Callable[[], Any]) -> Any:
    """Powertools' DynamoDB store for ``Idempotency-Key`` records, on the project's client."""
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    return DynamoDBPersistenceLayer(
        table_name=table_name,
        key_attr=IdempotencyKeys.PARTITION_KEY,
        expiry_attr=IdempotencyKeys.EXPIRY_ATTRIBUTE,
        boto3_client=client(),
    )
