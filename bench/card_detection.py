"""Card-number detection: false positives on ordinary ids and recall on test card numbers.

    python -m bench.card_detection          # 1,000,000 of each id kind
    python -m bench.card_detection --ids 10000

False positives: random UUIDs and 13-digit millisecond timestamps (2001-2096), each bare and
as an order id (``ord-...``), judged by ``chalicelib.cards.contains_pan`` (the API's guard and
the log redactor's rule). Baseline from the same run: the former rule, which joined any 13-19
digits with spaces or dashes between them and checked Luhn alone. Recall: numbers of every
network, every issued length and every prefix range (Luhn-completed), written contiguously and
in every grouping of their length with spaces and with dashes, inside text.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterator

from chalicelib.cards import GROUPINGS, NETWORKS, contains_pan, passes_luhn, redact_pans

SEED = 20261129
# 13-digit epoch milliseconds from 2001-09-09 to 2096: order ids made from a clock.
TIMESTAMP_RANGE = (10**12, 4 * 10**12 - 1)
_FORMER_RUN = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)")


def former_rule(text: str) -> bool:
    """The rule this project used before: any 13-19 digits, separators ignored, Luhn only."""
    return any(passes_luhn(re.sub(r"[ -]", "", m.group())) for m in _FORMER_RUN.finditer(text))


def _luhn_completed(body: str) -> str:
    return next(body + d for d in "0123456789" if passes_luhn(body + d))


def corpus(rng: random.Random, per_range: int = 5) -> Iterator[tuple[str, str]]:
    """(network, text) for test numbers of every network, length, prefix range and grouping."""
    for network in NETWORKS:
        for low, high in network.prefixes:
            for length in network.lengths:
                for _ in range(per_range):
                    prefix = str(rng.randint(low, high))
                    body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
                    number = _luhn_completed(body)
                    yield network.name, f"card {number} exp"
                    for layout in (g for g in GROUPINGS if sum(g) == length):
                        groups = []
                        start = 0
                        for size in layout:
                            groups.append(number[start : start + size])
                            start += size
                        for separator in " -":
                            yield network.name, f"pay with {separator.join(groups)}, thanks"


def ordinary_ids(rng: random.Random, count: int) -> dict[str, Callable[[], str]]:
    return {
        "UUID": lambda: str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "order id from a UUID": lambda: "ord-" + str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "13-digit ms timestamp": lambda: str(rng.randint(*TIMESTAMP_RANGE)),
        "order id from a timestamp": lambda: f"ord-{rng.randint(*TIMESTAMP_RANGE)}",
    }


def run(ids: int = 1_000_000) -> dict:
    """False positives per id kind (ours and the former rule) and recall per network."""
    rng = random.Random(SEED)
    false_positives: dict[str, dict[str, int]] = {}
    started = time.perf_counter()
    for kind, make in ordinary_ids(rng, ids).items():
        ours = former = 0
        for _ in range(ids):
            text = make()
            ours += contains_pan(text)
            former += former_rule(text)
        false_positives[kind] = {"ours": ours, "former": former}
    recall: dict[str, list[int]] = {}
    for network, text in corpus(rng):
        found = recall.setdefault(network, [0, 0])
        found[0] += contains_pan(text) and "[REDACTED-PAN]" in redact_pans(text)
        found[1] += 1
    return {
        "ids": ids,
        "false_positives": false_positives,
        "recall": {network: (hit, total) for network, (hit, total) in recall.items()},
        "seconds": time.perf_counter() - started,
    }


def render(result: dict) -> list[str]:
    """The result as Markdown lines for bench/results.md."""
    lines = [
        f"## Card-number detection ({result['ids']:,} ids of each kind; goal: 0 false positives, 100 % recall)",
        "",
        "| ordinary ids refused as card numbers | ours | former rule |",
        "|---|---:|---:|",
    ]
    for kind, counts in result["false_positives"].items():
        lines.append(f"| {kind} | **{counts['ours']}** | {counts['former']} |")
    total_hit = sum(hit for hit, _ in result["recall"].values())
    total = sum(total for _, total in result["recall"].values())
    lines += [
        "",
        "| network | test numbers found (every length, prefix range, grouping) | recall |",
        "|---|---:|---:|",
    ]
    for network, (hit, count) in result["recall"].items():
        lines.append(f"| {network} | {hit} / {count} | {100 * hit / count:.1f} % |")
    lines += [f"| **all** | {total_hit} / {total} | **{100 * total_hit / total:.1f} %** |", ""]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", type=int, default=1_000_000, help="ids of each kind")
    result = run(parser.parse_args().ids)
    print("\n".join(render(result)))
    print(f"({result['seconds']:.0f} s)")
    misses = sum(total - hit for hit, total in result["recall"].values())
    false = sum(c["ours"] for c in result["false_positives"].values())
    return 0 if misses == 0 and false == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
