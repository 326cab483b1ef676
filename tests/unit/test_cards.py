"""The card-number guard: Luhn check and redaction."""

from __future__ import annotations

import pytest

from chalicelib.cards import REDACTED, contains_pan, find_pan_fields, passes_luhn, redact_pans


@pytest.mark.parametrize(
    "number",
    ["4111111111111111", "5555555555554444", "378282246310005", "6011111111111117", "4000056655665556"],
)
def test_well_known_test_card_numbers_pass_luhn(number: str) -> None:
    assert passes_luhn(number)
    assert contains_pan(number)


@pytest.mark.parametrize("text", ["4111111111111112", "411111111111", "12345678901234567890123", "hello"])
def test_non_card_digit_runs_are_not_card_numbers(text: str) -> None:
    assert not contains_pan(text)


def test_redaction_replaces_grouped_and_embedded_card_numbers() -> None:
    line = '{"msg":"pan 4111 1111 1111 1111 and 5555-5555-5555-4444, order 12345"}'

    redacted = redact_pans(line)

    assert "4111" not in redacted and "5555" not in redacted
    assert redacted.count(REDACTED) == 2
    assert "order 12345" in redacted


def test_find_pan_fields_reports_paths_through_objects_and_lists() -> None:
    document = {"a": {"b": ["x", "4111111111111111"]}, "c": "fine"}

    assert find_pan_fields(document) == ["a.b[1]"]
