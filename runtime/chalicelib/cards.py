"""Recognising raw card numbers (PANs) so they are refused, never stored, echoed or logged."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

PAN_MIN_DIGITS = 13
PAN_MAX_DIGITS = 19
# Card numbers are written with spaces or dashes between digit groups; a run of digits with
# such separators is judged on its digits alone; a longer run of digits is not a card number.
_DIGIT_RUN = re.compile(r"(?<!\d)\d(?:[ -]?\d){%d,%d}(?!\d)" % (PAN_MIN_DIGITS - 1, PAN_MAX_DIGITS - 1))
_SEPARATORS = re.compile(r"[ -]")
REDACTED = "[REDACTED-PAN]"


def passes_luhn(digits: str) -> bool:
    """True when ``digits`` (only 0-9) has a valid Luhn check digit."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = ord(char) - 48
        if position % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def _pan_spans(text: str) -> Iterator[tuple[int, int]]:
    for match in _DIGIT_RUN.finditer(text):
        digits = _SEPARATORS.sub("", match.group())
        if PAN_MIN_DIGITS <= len(digits) <= PAN_MAX_DIGITS and passes_luhn(digits):
            yield match.span()


def contains_pan(text: str) -> bool:
    """True when ``text`` holds 13-19 digits (optionally grouped) that pass the Luhn check."""
    return any(True for _ in _pan_spans(text))


def redact_pans(text: str) -> str:
    """``text`` with every card-number-like run replaced by a fixed marker."""
    spans = list(_pan_spans(text))
    for start, end in reversed(spans):
        text = text[:start] + REDACTED + text[end:]
    return text


def find_pan_fields(document: Any, path: str = "") -> list[str]:
    """Dotted paths of every string or integer in ``document`` that looks like a card number."""
    found: list[str] = []
    if isinstance(document, dict):
        for key, value in document.items():
            # A key can itself be card-like; the path we report must never repeat it.
            safe_key = redact_pans(str(key))
            child = f"{path}.{safe_key}" if path else safe_key
            if safe_key != str(key):
                found.append(path or "(body)")
            found.extend(find_pan_fields(value, child))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found.extend(find_pan_fields(value, f"{path}[{index}]"))
    elif isinstance(document, bool):
        pass
    elif isinstance(document, (str, int)) or (
        # JSON numbers are parsed as Decimal; a whole number can be a card number too.
        isinstance(document, Decimal)
        and document.is_finite()
        and 0 <= document.adjusted() < PAN_MAX_DIGITS
        and document == document.to_integral_value()
    ):
        if contains_pan(str(document) if not isinstance(document, Decimal) else f"{document:f}"):
            found.append(path or "(body)")
    return found
