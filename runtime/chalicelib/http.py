"""Request parsing and the single mapping from domain errors to HTTP responses."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from functools import wraps
from typing import Any, TypeVar, cast

from chalice.app import Response

from chalicelib import errors
from chalicelib.cards import redact_pans
from chalicelib.errors import FieldError, PaymentError
from chalicelib.observability import report_dependency_failure
from chalicelib.schema import (
    NOTHING_COMMITTED,
    OUTCOME_UNKNOWN,
    PAYMENT_OUTCOME_HEADER,
    REGION_DRAINING_HEADER,
)

MAX_BODY_BYTES = 64 * 1024
# Deeply nested JSON is never a payment and can exhaust the parser's recursion.
MAX_NESTING_DEPTH = 32
JSON_CONTENT_TYPE = "application/json"
MAX_SHOWN_KEY_LENGTH = 64

STATUS_BY_ERROR: dict[type[PaymentError], int] = {
    errors.MalformedRequest: 400,
    errors.InvalidQuery: 400,
    errors.UnknownClient: 403,
    errors.PaymentNotFound: 404,
    errors.WebhookEndpointNotFound: 404,
    errors.TransactionConflict: 409,
    errors.WebhookEndpointChanged: 409,
    errors.WebhookEndpointDisabled: 409,
    errors.PayloadTooLarge: 413,
    errors.UnsupportedMediaType: 415,
    errors.ValidationFailed: 422,
    errors.IdempotencyKeyReused: 422,
    errors.DependencyUnavailable: 503,
    errors.RegionNotAccepting: 503,
}
RETRY_AFTER_SECONDS = "1"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


class DuplicateKey(ValueError):
    """A JSON object names the same key twice."""

    def __init__(self, key: str) -> None:
        super().__init__("a key appears more than once in one object")
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Parsers disagree on which of two equal keys wins (the first, the last, an error); two
    # along a payment's path could read different amounts. One answer: refuse the document.
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return document


def parse_json(text: str | bytes) -> Any:
    """Parse JSON with every number as ``Decimal``; NaN, Infinity and repeated keys are refused."""
    return json.loads(
        text,
        parse_float=Decimal,
        parse_int=Decimal,
        parse_constant=_reject_constant,
        object_pairs_hook=_unique_keys,
    )


def _nesting_depth_exceeds(text: str, limit: int) -> bool:
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def read_json_body(headers: Mapping[str, str], raw_body: bytes | None) -> Any:
    """The parsed JSON body of a request, or the named error that explains why there is none."""
    content_type = headers.get("content-type", "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != JSON_CONTENT_TYPE:
        raise errors.UnsupportedMediaType([FieldError("Content-Type", f"must be {JSON_CONTENT_TYPE}")])
    body = raw_body or b""
    if len(body) > MAX_BODY_BYTES:
        raise errors.PayloadTooLarge([FieldError("(body)", f"must be at most {MAX_BODY_BYTES} bytes")])
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise errors.MalformedRequest([FieldError("(body)", "must be UTF-8 encoded JSON")]) from error
    if not text.strip():
        raise errors.MalformedRequest([FieldError("(body)", "is empty; send a JSON object")])
    if _nesting_depth_exceeds(text, MAX_NESTING_DEPTH):
        raise errors.MalformedRequest([FieldError("(body)", f"nests deeper than {MAX_NESTING_DEPTH} levels")])
    return parse_document(text)


def parse_document(text: str) -> Any:
    """The JSON document in ``text``, or :class:`MalformedRequest` naming what is wrong with it."""
    try:
        return parse_json(text)
    except DuplicateKey as error:
        raise errors.MalformedRequest(
            [FieldError(shown_key(error.key), "appears more than once; send each field once")]
        ) from error
    except (ValueError, RecursionError) as error:
        # The parser's message can quote the body, which may hold card data: never echo it.
        raise errors.MalformedRequest([FieldError("(body)", "is not valid JSON")]) from error


def shown_key(key: str) -> str:
    """A client's field name as an error may quote it: card-number-like digits masked, bounded."""
    return redact_pans(key)[:MAX_SHOWN_KEY_LENGTH] or "(empty field name)"


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def json_response(body: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response; any ``Decimal`` left in ``body`` is written as a string."""
    return Response(
        body=json.dumps(body, default=_default, separators=(",", ":")),
        status_code=status_code,
        headers={"Content-Type": JSON_CONTENT_TYPE, **(headers or {})},
    )


REPLAYED_HEADER = "Idempotent-Replayed"


def stored_response(answer: Any) -> Response:
    """The HTTP response of a :class:`~chalicelib.idempotency.StoredResponse`, marking replays."""
    headers = {REPLAYED_HEADER: "true"} if answer.replayed else None
    return json_response(answer.body, answer.status, headers)


def error_response(error: PaymentError) -> Response:
    """The HTTP response for a domain error: its status and every problem it names."""
    status = STATUS_BY_ERROR.get(type(error), 400)
    headers: dict[str, str] = {}
    if status >= 500:
        headers["Retry-After"] = RETRY_AFTER_SECONDS
        nothing = isinstance(error, errors.RegionNotAccepting) or (
            isinstance(error, errors.DependencyUnavailable) and error.committed_nothing
        )
        headers[PAYMENT_OUTCOME_HEADER] = NOTHING_COMMITTED if nothing else OUTCOME_UNKNOWN
    if isinstance(error, errors.RegionNotAccepting):
        # A planned drain, not a failure: the peer's canary must not read it as one.
        headers[REGION_DRAINING_HEADER] = "true"
    return json_response({"errors": [e.to_json() for e in error.errors]}, status, headers or None)


F = TypeVar("F", bound=Callable[..., Any])


def answers_errors_as_json[F: Callable[..., Any]](view: F) -> F:
    """Turn any :class:`PaymentError` a route raises into its JSON error response.

    A 503 logs its cause once, here: which dependency, operation, AWS error code and request id.
    """

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except errors.DependencyUnavailable as error:
            report_dependency_failure(error)
            return error_response(error)
        except PaymentError as error:
            return error_response(error)

    return cast(F, wrapper)
