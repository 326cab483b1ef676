"""Reading request bodies: every way a body can be wrong is a named 4xx error."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from chalicelib import errors
from chalicelib.http import MAX_BODY_BYTES, STATUS_BY_ERROR, error_response, read_json_body

JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("headers", "raw", "error", "status"),
    [
        ({"content-type": "text/plain"}, b"{}", errors.UnsupportedMediaType, 415),
        ({}, b"{}", errors.UnsupportedMediaType, 415),
        (JSON, b"x" * (MAX_BODY_BYTES + 1), errors.PayloadTooLarge, 413),
        (JSON, b"", errors.MalformedRequest, 400),
        (JSON, b"{not json", errors.MalformedRequest, 400),
        (JSON, b'{"amount": NaN}', errors.MalformedRequest, 400),
        (JSON, b'{"amount": Infinity}', errors.MalformedRequest, 400),
        (JSON, b"\xff\xfe", errors.MalformedRequest, 400),
        (JSON, b"[" * 100_000 + b"]" * 100_000, errors.PayloadTooLarge, 413),
        (JSON, b"[" * 1000 + b"]" * 1000, errors.MalformedRequest, 400),
    ],
)
def test_unreadable_bodies_are_named_errors(
    headers: dict[str, str], raw: bytes, error: type[errors.PaymentError], status: int
) -> None:
    with pytest.raises(error) as caught:
        read_json_body(headers, raw)

    response = error_response(caught.value)
    assert response.status_code == status
    assert json.loads(response.body)["errors"][0]["field"]


def test_json_with_charset_parameter_is_accepted_and_numbers_are_decimal() -> None:
    document = read_json_body({"content-type": "application/json; charset=utf-8"}, b'{"amount": 1.10}')

    assert document == {"amount": Decimal("1.10")}


def test_a_malformed_body_is_never_echoed() -> None:
    with pytest.raises(errors.MalformedRequest) as caught:
        read_json_body(JSON, b'{"pan": "4111111111111111",')

    assert "4111" not in error_response(caught.value).body


def test_every_domain_error_has_an_http_status() -> None:
    domain_errors = {
        cls
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.PaymentError) and cls is not errors.PaymentError
    }

    assert domain_errors == set(STATUS_BY_ERROR)
    assert all(400 <= status < 600 and status != 500 for status in STATUS_BY_ERROR.values())
