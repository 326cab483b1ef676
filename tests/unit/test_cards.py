"""The card-number guard: issuer prefix, length and Luhn, contiguous or grouped; and redaction."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.cards import (
    GROUPINGS,
    REDACTED,
    contains_pan,
    find_pan_fields,
    network_of,
    passes_luhn,
    redact_pans,
)


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


# One published test number per network (Stripe, Adyen and the networks' own test sets).
TEST_NUMBERS = {
    "Visa": "4242424242424242",
    "Visa (13 digits)": "4222222222222",
    "Mastercard": "5555555555554444",
    "Mastercard (2-series)": "2223003122003222",
    "American Express": "378282246310005",
    "Discover": "6011111111111117",
    "JCB": "3566002020360505",
    "UnionPay": "6200000000000005",
    "Diners Club": "36227206271667",
    "Maestro": "6759649826438453",
}


@pytest.mark.parametrize("network", sorted(TEST_NUMBERS))
def test_each_networks_test_number_is_found_contiguous_and_in_its_groupings(network: str) -> None:
    number = TEST_NUMBERS[network]
    layouts = [g for g in GROUPINGS if sum(g) == len(number)]

    assert network.split(" (")[0] == network_of(number)
    assert contains_pan(f"card {number}.") and contains_pan(f"card{number}")
    for layout in layouts:
        groups, start = [], 0
        for size in layout:
            groups.append(number[start : start + size])
            start += size
        for separator in " -":
            assert redact_pans(f"pay with {separator.join(groups)} today") == f"pay with {REDACTED} today"


@pytest.mark.parametrize(
    "text",
    [
        "b2f40b0f-9d17-47e1-8264-87276989f244",  # a UUID the former rule refused
        "ord-1795932171006",  # a millisecond timestamp (no network starts with 1)
        "1795932171006",
        "9999999999999995",  # passes Luhn, but no network issues 99
        "4111-1111-1111-1111-1111",  # a chain of groups longer than any card
        "4111x1111x1111x1111",  # digits pieced together across letters
    ],
)
def test_ids_that_only_look_like_card_numbers_are_not_card_numbers(text: str) -> None:
    assert not contains_pan(text)
    assert redact_pans(text) == text


@given(st.uuids().map(str), st.sampled_from(["", "ord-", "txn_", "x"]))
def test_no_uuid_is_ever_a_card_number(value: str, prefix: str) -> None:
    # Written as UUIDs are, its longest digit run is 12: never a card number.
    assert not contains_pan(prefix + value)


def test_a_uuid_without_its_dashes_can_hold_a_real_card_number_and_is_refused() -> None:
    # 32 hex characters can hold a 15-digit run: this one has Diners Club's prefix and a valid Luhn
    # digit, so a DLP rule must refuse it (the dashed form of the same UUID is spared).
    value = "5d89b303-0490-2648-1623-bbb2a5298292"

    assert not contains_pan(value)
    assert contains_pan(value.replace("-", ""))


# 13-digit epoch milliseconds from 2001 to 2096; only Visa (4) and Maestro (5, 6) issue 13 digits.
@given(st.integers(min_value=10**12, max_value=4 * 10**12 - 1))
def test_no_millisecond_timestamp_is_ever_a_card_number(millis: int) -> None:
    assert not contains_pan(f"ord-{millis}")
    assert find_pan_fields({"transaction_id": str(millis), "n": millis}) == []


def test_the_benchmark_corpus_is_found_whole_and_its_ordinary_ids_spared() -> None:
    from bench import card_detection

    result = card_detection.run(ids=2000)

    assert all(counts["ours"] == 0 for counts in result["false_positives"].values())
    assert all(hit == total for hit, total in result["recall"].values())
    # The former rule refused timestamps: the benchmark's baseline must still show it.
    assert result["false_positives"]["13-digit ms timestamp"]["former"] > 0
