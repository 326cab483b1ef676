"""Recognising raw card numbers (PANs) so they are refused, never stored, echoed or logged.

As a DLP tool does: a number counts when it has a network's issuer prefix and length and passes
the Luhn check, written contiguously or in the networks' usual groupings. The API's guard and
the log redactor use this one rule. ``make bench`` measures it: false positives on a million
UUIDs and a million millisecond timestamps, recall on test numbers of every network and grouping.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, NamedTuple

PAN_MIN_DIGITS = 13
PAN_MAX_DIGITS = 19
REDACTED = "[REDACTED-PAN]"


class Network(NamedTuple):
    """A card network's issuer prefixes (IIN ranges, inclusive) and the lengths it issues."""

    name: str
    prefixes: tuple[tuple[int, int], ...]
    lengths: range


# Published IIN ranges. Maestro's 12-digit numbers are left out: no longer issued, and a 12-digit
# run is as long as the last group of any UUID written in digits only.
NETWORKS = (
    Network("Visa", ((4, 4),), range(13, 20, 3)),  # 13, 16, 19
    Network("Mastercard", ((51, 55), (2221, 2720)), range(16, 17)),
    Network("American Express", ((34, 34), (37, 37)), range(15, 16)),
    Network("Discover", ((6011, 6011), (644, 649), (65, 65), (622126, 622925)), range(16, 20)),
    Network("JCB", ((3528, 3589),), range(16, 20)),
    Network("UnionPay", ((62, 62),), range(16, 20)),
    Network("Diners Club", ((300, 305), (3095, 3095), (36, 36), (38, 39)), range(14, 20)),
    Network(
        "Maestro",
        ((5018, 5018), (5020, 5020), (5038, 5038), (5893, 5893), (6304, 6304), (6759, 6759), (6761, 6763)),
        range(13, 20),
    ),
)
# How card numbers are printed: group sizes, separated by one space or one dash throughout.
GROUPINGS = frozenset({(4, 4, 4, 4), (4, 6, 5), (4, 6, 4), (4, 4, 4, 4, 3), (4, 4, 5)})

# A run of 13-19 digits with no digit on either side (letters may touch it: "card4111..." is
# still a card number), or digit groups joined by one kind of separator, touching no letter or
# digit and not part of a longer chain of groups. Digits are never pieced together across
# letters, so no UUID can ever match: its longest digit run is its 12-character last group.
_CONTIGUOUS = re.compile(rf"(?<!\d)\d{{{PAN_MIN_DIGITS},{PAN_MAX_DIGITS}}}(?!\d)")
_GROUPED = re.compile(
    r"(?<![A-Za-z0-9])(?<!\d[ -])\d{4}([ -])\d{4,6}(?:\1\d{3,5}){1,3}(?![A-Za-z0-9])(?![ -]\d)"
)
_SEPARATORS = re.compile(r"[ -]")


def network_of(digits: str) -> str | None:
    """The network whose prefix and length ``digits`` has, if any (the Luhn check is separate)."""
    for network in NETWORKS:
        if len(digits) in network.lengths:
            for low, high in network.prefixes:
                if low <= int(digits[: len(str(low))]) <= high:
                    return network.name
    return None


def is_card_number(digits: str) -> bool:
    """True when ``digits`` (0-9 only) has a network's prefix and length and a valid Luhn digit."""
    return network_of(digits) is not None and passes_luhn(digits)


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
    for match in _CONTIGUOUS.finditer(text):
        if is_card_number(match.group()):
            yield match.span()
    for match in _GROUPED.finditer(text):
        groups = _SEPARATORS.split(match.group())
        if tuple(map(len, groups)) in GROUPINGS and is_card_number("".join(groups)):
            yield match.span()


def contains_pan(text: str) -> bool:
    """True when ``text`` holds a card number of a known network, contiguous or grouped."""
    return any(True for _ in _pan_spans(text))


def redact_pans(text: str) -> str:
    """``text`` with every card number :func:`contains_pan` finds replaced by a fixed marker."""
    spans = sorted(set(_pan_spans(text)))
    for start, end in reversed(spans):
        text = text[:start] + REDACTED + text[end:]
    return text


def _may_be_a_card_number(value: Any) -> bool:
    """A string, a whole number, or a JSON number (parsed as Decimal) that is a whole number."""
    if isinstance(value, bool):
        return False
    if isinstance(value, (str, int)):
        return True
    return (
        isinstance(value, Decimal)
        and value.is_finite()
        and 0 <= value.adjusted() < PAN_MAX_DIGITS
        and value == value.to_integral_value()
    )


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
    elif _may_be_a_card_number(document) and contains_pan(
        f"{document:f}" if isinstance(document, Decimal) else str(document)
    ):
        found.append(path or "(body)")
    return found
