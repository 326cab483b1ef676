"""``make bench``: every benchmark, each against its baseline from the same run, into results.md.

python -m bench            # writes bench/results.md and prints it
"""

from __future__ import annotations

import io
import logging
import os
import platform
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results.md"


def _quiet_handlers() -> None:
    """The handlers log every payment; the benchmarks format those lines and discard them."""
    from chalicelib.observability import logger

    for handler in logging.getLogger(logger.name).handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 (lives as long as the process)


def main() -> int:
    from bench import (
        card_detection,
        cold_start,
        cost,
        flag_reads,
        package_size,
        requests_per_payment,
        strong_latency,
        throughput,
        warm_latency,
    )
    from localenv.progress import Heartbeat

    started = time.perf_counter()
    _quiet_handlers()
    phase = ["starting"]

    def running(name: str) -> None:
        phase[0] = name
        sys.stderr.write(f"bench: {name}\n")

    with Heartbeat("bench", lambda: phase[0]):
        with redirect_stdout(io.StringIO()):  # embedded-metric lines
            running("cold start (1 of 9)")
            cold = cold_start.run()
            running("AWS requests per payment (2 of 9)")
            counted = requests_per_payment.run()
            running("processor throughput (3 of 9)")
            rates = throughput.run()
            running("warm latency (4 of 9)")
            warm = warm_latency.run()
            running("POST /process in strong mode (5 of 9)")
            strong = strong_latency.run()
        running("cost (6 of 9)")
        priced = cost.run(counted)
        running("package size (7 of 9)")
        size = package_size.run()
        running("card detection on 4 million ids (8 of 9)")
        cards = card_detection.run()
        running("in-service flag reads of 1, 100 and 1000 containers (9 of 9)")
        with redirect_stdout(io.StringIO()):
            flags = flag_reads.run()
    report = render(cold, counted, rates, warm, priced, size, time.perf_counter() - started)
    report += "\n" + "\n".join(strong_latency.render(strong))
    report += "\n" + "\n".join(card_detection.render(cards))
    report += "\n" + "\n".join(flag_reads.render(flags))
    RESULTS.write_text(report)
    print(report)
    return 0


def _instruction_lines(cold: dict) -> list[str]:
    if "api_instructions_ratio" not in cold:
        return ["Instructions: not counted (valgrind is not installed).", ""]
    return [
        (
            f"Instructions executed (valgrind, one run each, no noise): floor {cold['floor_instructions_m']:.0f} M, "
            f"bare {cold['bare_instructions_m']:.0f} M ({cold['bare_instructions_ratio']:.2f}), "
            f"ours (API function) {cold['api_instructions_m']:.0f} M (**{cold['api_instructions_ratio']:.2f}**)."
        ),
        "",
    ]


# What a payment may add to the monthly bill, at most, as a share of what it adds to the seed's.
PER_PAYMENT_GOAL = 0.40


def _write_unit_lines(counted: dict) -> list[str]:
    """DynamoDB write units per payment, by table, of ours and the seed (the cost model's input)."""
    usages = (counted["ours_plain_usage"], counted["ours_usage"], counted["seed_usage"])
    kinds = sorted({kind for usage in usages for kind in usage["write_units"]})

    def units(usage: dict, field: str, kind: str | None = None) -> float:
        values = usage[field]
        return float(values.get(kind, 0.0)) if kind else float(sum(values.values()))

    rows = [
        f"| {kind} | " + " | ".join(f"{units(u, 'write_units', kind):.2f}" for u in usages) + " |"
        for kind in kinds
    ]
    plain, keyed, seed = (units(u, "write_units") for u in usages)
    replicated = [units(u, "replicated_units") for u in usages]
    chains = counted["sequential_writes"]
    from bench.requests_per_payment import SEQUENCE_SAMPLES

    return [
        "## DynamoDB write units per payment (the same run; each item of 1 KB or less is one unit)",
        "",
        "| table | ours | ours, with an Idempotency-Key | seed design |",
        "|---|---:|---:|---:|",
        *rows,
        f"| **total** | **{plain:.2f}** | {keyed:.2f} | {seed:.2f} |",
        "| replicated to the peer region | " + " | ".join(f"{r:.2f}" for r in replicated) + " |",
        "",
        (
            f"Ours / seed: **{plain / seed:.2f}** in write units, **{replicated[1] / replicated[2]:.2f}** in "
            "replicated write units with an Idempotency-Key. A payment is two conditional puts (the claim, "
            "then the record), not a transaction, which would cost two units per item and which multi-Region "
            "strong consistency refuses; a key is one more put, its binding, made after the work (it was "
            "two before: Powertools' record written in progress, then completed). Index writes are not in "
            "this table: the cost model prices them on a line of their own, for each design's indexes "
            "(ours: the claim in the events index, the record in the customer index; in each region)."
        ),
        "",
        (
            f"Sequential writes per keyed `POST /process` (the longest chain of writes each waiting for the one "
            f"before, {SEQUENCE_SAMPLES} calls timed by botocore's events, each DynamoDB call held 20 ms as its "
            f"network round trip): ours **{chains['ours_keyed_process']}** "
            f"(goal: at most 2; the claim, then the record and the key's binding at once; four before), the "
            f"seed's processor {chains['seed']} (one put, and no key)."
        ),
        "",
    ]


def render(
    cold: dict, counted: dict, rates: dict, warm: dict, priced: dict, size: dict, seconds: float
) -> str:
    from bench import cost

    apis = sorted(set(counted["ours"]) | set(counted["ours_keyed"]) | set(counted["seed"]))
    lines = [
        "# Benchmark results",
        "",
        (
            f"Written by `make bench` on {time.strftime('%Y-%m-%d')} ({platform.python_implementation()} "
            f"{platform.python_version()}, {os.cpu_count()} CPUs, {seconds:.0f} s). Every figure sits beside its "
            "baseline from the same run; compare ratios, not absolute times, across machines."
        ),
        "",
        "## Cold start (fresh interpreter: import the handler, serve the function's first event)",
        "",
        "| | CPU ms | ratio to floor | peak RSS MiB | ratio to floor |",
        "|---|---:|---:|---:|---:|",
        f"| floor: `import boto3, chalice` | {cold['floor_cpu_ms']:.0f} | 1.00 | {cold['floor_rss_mib']:.1f} | 1.00 |",
        (
            f"| bare: the same AWS calls, no framework | {cold['bare_cpu_ms']:.0f} | {cold['bare_cpu_ratio']:.2f} | "
            f"{cold['bare_rss_mib']:.1f} | {cold['bare_rss_ratio']:.2f} |"
        ),
        (
            f"| **ours: API function, one /validate** | {cold['api_cpu_ms']:.0f} | **{cold['api_cpu_ratio']:.2f}** | "
            f"{cold['api_rss_mib']:.1f} | {cold['api_rss_ratio']:.2f} |"
        ),
        *[
            f"| ours: {name} function, {event} | {cold[f'{name}_cpu_ms']:.0f} | {cold[f'{name}_cpu_ratio']:.2f} | "
            f"{cold[f'{name}_rss_mib']:.1f} | {cold[f'{name}_rss_ratio']:.2f} |"
            for name, event in (
                ("processor", "one SQS message"),
                ("notifier", "one stream record"),
                ("orchestrator", "one alarm notification"),
            )
        ],
        "",
        (
            f"The goal (at most 1.2x the floor) is the API function's: clients wait on it. API function against bare: "
            f"{cold['api_over_bare_cpu_ratio']:.2f}x CPU. CPU: fastest of {cold['runs']:.0f} alternating runs "
            f"({cold['other_runs']:.0f} for the event-driven functions)."
        ),
        "",
        *_instruction_lines(cold),
        f"## AWS requests per payment (validate -> queue -> process -> notify, {counted['payments']} payments)",
        "",
        "| API | ours | ours, with an Idempotency-Key | seed design |",
        "|---|---:|---:|---:|",
        *[
            f"| {api} | {counted['ours'].get(api, 0):.2f} | {counted['ours_keyed'].get(api, 0):.2f} | "
            f"{counted['seed'].get(api, 0):.2f} |"
            for api in apis
        ],
        f"| **total** | **{counted['ours_total']:.2f}** | {counted['ours_keyed_total']:.2f} | {counted['seed_total']:.2f} |",
        "",
        (
            f"Ours / seed: **{counted['ratio']:.2f}** (the seed has no Idempotency-Key; a keyed request adds the "
            "key's binding, read before the work and written beside the record). `sqs:EventSourcePolling` is Lambda's poller "
            "(ReceiveMessage and DeleteMessageBatch per batch of ten), the same for both; stream reads by Lambda are "
            "free and not counted."
        ),
        "",
        *_write_unit_lines(counted),
        "## Throughput of the SQS processor (payments per second of handler time, one worker, moto on loopback)",
        "",
        "| batch size | ours | seed design | ratio |",
        "|---:|---:|---:|---:|",
        *[
            f"| {b} | {rates[f'ours_batch{b}_per_second']:.0f} | {rates[f'seed_batch{b}_per_second']:.0f} | "
            f"{rates[f'ratio_batch{b}']:.2f} |"
            for b in (1, 10)
        ],
        "",
        "## Warm handler latency (in process, AWS answered inside botocore, 1000 samples)",
        "",
        "| | ours p50 ms | ours p99 ms | bare p50 ms | bare p99 ms | p50 ratio |",
        "|---|---:|---:|---:|---:|---:|",
        *[
            f"| {w} | {warm[f'ours_{w}_p50_ms']:.3f} | {warm[f'ours_{w}_p99_ms']:.3f} | {warm[f'bare_{w}_p50_ms']:.3f} | "
            f"{warm[f'bare_{w}_p99_ms']:.3f} | {warm[f'{w}_p50_ratio']:.2f} |"
            for w in ("validate", "process")
        ],
        "",
        "## Monthly cost, every billed line (`bench/cost.py`, prices and assumptions in `bench/prices.json`)",
        "",
        *cost.table(priced),
        (
            f"What a payment adds (100M minus the fixed part, ours over the seed): "
            f"**{cost.per_payment_ratio(priced):.2f}** (goal: at most {PER_PAYMENT_GOAL:.2f})."
        ),
        "",
        (
            f"## What active-active adds (`-c topology=active-active`, witness {priced['active_active']['witness']}), "
            "against today's default, active-passive and eventually consistent"
        ),
        "",
        (
            "Only the lines that differ. Active-active's payments are split evenly between the regions, each "
            "region's processor and notifier taking its half; the standby of active-passive is deployed and "
            "paid for already, so what changes is what scales per region: X-Ray's free reservoir of one "
            "trace a second (now used in both regions), the processors' batches (each fills at half the rate). "
            "Latency records are alias records to API Gateway, whose queries are free, like the failover "
            "records'; AWS lists no separate price for a witness (priced at 0 here); cross-region data "
            "transfer is priced in neither."
        ),
        "",
        *cost.active_active_table(priced),
        "## Monthly cost of webhook delivery (`cost.webhook_delivery`, assumptions in `bench/prices.json`)",
        "",
        (
            "Each payment's event to one endpoint of its merchant, 1,000 endpoints in all; what the deliverer "
            "adds to the bill above. The per-endpoint metrics are a fixed part: $0.30 a month per endpoint "
            "and metric, whatever the volume."
        ),
        "",
        *cost.webhook_table(),
        "",
        "## Deployment package (`chalice package`, plus bytecode for ours as the stack ships it)",
        "",
        "| | zip KiB | unpacked KiB |",
        "|---|---:|---:|",
        f"| bare one-route Chalice app | {size['bare_zip_kib']:.0f} | {size['bare_unpacked_kib']:.0f} |",
        f"| ours (chalicelib, Powertools, boto3 and botocore without its API data, all with bytecode) | {size['ours_zip_kib']:.0f} | {size['ours_unpacked_kib']:.0f} |",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
