"""Load run on the local environment: many payments from concurrent clients, then an audit.

Sends payments to ``POST /validate`` from concurrent clients: unique valid payments, resends of
them (half with the same ``Idempotency-Key``, half a plain client retry) and invalid ones. Then
waits for the queue to drain and audits both regions' tables: every valid payment stored
exactly once, no invalid one stored, no 5xx answered. Prints the figures.

    python -m bench.load_run [--payments 10000] [--clients 20]      (make load)
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests

from chalicelib.items import is_payment_record
from localenv import replication
from localenv.environment import LocalEnvironment, RegionPlan, free_port

DUPLICATE_SHARE = 0.10
INVALID_SHARE = 0.10
DRAIN_TIMEOUT_SECONDS = 900
AUDIT_INTERVAL_SECONDS = 5
CONNECTION_ATTEMPTS = 5


@dataclass(frozen=True)
class Request:
    """One request of the run and what the audit expects of it."""

    body: dict[str, Any]
    valid: bool
    idempotency_key: str | None = None


@dataclass
class Outcome:
    """What the clients observed."""

    statuses: Counter[int] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    acknowledged: set[str] = field(default_factory=set)
    connection_retries: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, status: int, latency_ms: float, transaction_id: str) -> None:
        with self.lock:
            self.statuses[status] += 1
            self.latencies_ms.append(latency_ms)
            if status == 202:
                self.acknowledged.add(transaction_id)


def plan_requests(total: int, seed: int = 7) -> list[Request]:
    """``total`` requests: unique valid payments, duplicates of them and invalid ones, shuffled."""
    rng = random.Random(seed)
    duplicates = int(total * DUPLICATE_SHARE)
    invalid = int(total * INVALID_SHARE)
    unique = total - duplicates - invalid
    payments = [
        Request(
            body={
                "transaction_id": f"load-{n:06d}",
                "customer_id": f"cust-{n % 500:04d}",
                "amount": f"{rng.randint(1, 2_000_000) / 100:.2f}",
                "currency": rng.choice(["USD", "EUR", "GBP"]),
            },
            valid=True,
            idempotency_key=f"key-{n:06d}" if n % 2 else None,
        )
        for n in range(unique)
    ]
    resends = [rng.choice(payments) for _ in range(duplicates)]
    broken = [
        Request(body={"transaction_id": f"bad-{n:06d}", "customer_id": "c", "amount": rng.choice(["-1", "0", "1.234", "abc"]),
                      "currency": "USD"}, valid=False)
        for n in range(invalid)
    ]
    requests_ = payments + resends + broken
    rng.shuffle(requests_)
    return requests_


class Pacer:
    """Spaces requests evenly across all clients at ``rate`` per second (None: as fast as possible)."""

    def __init__(self, rate: float | None) -> None:
        self._interval = 1 / rate if rate else 0.0
        self._next = time.perf_counter()
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self._interval:
            return
        with self._lock:
            slot = self._next = max(self._next + self._interval, time.perf_counter())
        time.sleep(max(0.0, slot - time.perf_counter()))


def send_all(
    api_url: str, api_key: str, planned: list[Request], clients: int, rate: float | None = None
) -> tuple[Outcome, float]:
    """Send every request from ``clients`` threads; returns what they saw and the seconds it took."""
    outcome = Outcome()
    local = threading.local()
    pacer = Pacer(rate)

    def send(request: Request) -> None:
        pacer.wait()
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        headers = {"Content-Type": "application/json", "x-api-key": api_key}
        if request.idempotency_key:
            headers["Idempotency-Key"] = request.idempotency_key
        # `chalice local`'s HTTP server has a listen backlog of 5 and resets connections beyond
        # it; a client retries a reset connection, as it would any network error.
        for attempt in range(CONNECTION_ATTEMPTS):
            started = time.perf_counter()
            try:
                response = session.post(api_url + "/validate", data=json.dumps(request.body), headers=headers,
                                        timeout=30)
            except requests.ConnectionError:
                with outcome.lock:
                    outcome.connection_retries += 1
                time.sleep(0.2 * (attempt + 1))
                continue
            outcome.record(response.status_code, (time.perf_counter() - started) * 1000, request.body["transaction_id"])
            return
        outcome.record(0, (time.perf_counter() - started) * 1000, request.body["transaction_id"])

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(send, planned))
    return outcome, time.perf_counter() - started


def stored_counts(environment: LocalEnvironment, region: str) -> Counter[str]:
    """How many payment records each transaction id has in ``region``'s table."""
    client = environment.client("dynamodb", region)
    table = environment.resources[region].payments_table
    counts: Counter[str] = Counter()
    for page in client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        for item in page["Items"]:
            if is_payment_record(item):
                counts[item["transaction_id"]["S"]] += 1
    return counts


@dataclass(frozen=True)
class Audit:
    """The run's figures and whether every promise held."""

    sent: int
    clients: int
    seconds: float
    statuses: dict[int, int]
    connection_retries: int
    p50_ms: float
    p99_ms: float
    valid: int
    stored: dict[str, int]
    doubled: dict[str, int]
    missing: dict[str, int]
    invalid_stored: dict[str, int]
    drain_seconds: float

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    @property
    def passed(self) -> bool:
        return (
            self.server_errors == 0
            and not any(self.doubled.values())
            and not any(self.missing.values())
            and not any(self.invalid_stored.values())
        )

    def report(self) -> str:
        rows = [
            ("requests sent", f"{self.sent} from {self.clients} concurrent clients in {self.seconds:.1f} s "
                              f"({self.sent / self.seconds:.0f} requests/s)"),
            ("responses", ", ".join(f"{status}: {n}" for status, n in sorted(self.statuses.items()))),
            ("5xx responses", str(self.server_errors)),
            ("connection resets retried", f"{self.connection_retries} (the local dev server's listen backlog)"),
            ("latency /validate", f"p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms"),
            ("valid payments acknowledged", str(self.valid)),
            ("queue drained", f"{self.drain_seconds:.1f} s after the last request"),
        ]
        for region in self.stored:
            rows.append((f"stored in {region}", f"{self.stored[region]} payments, {self.doubled[region]} doubled, "
                                                f"{self.missing[region]} missing, {self.invalid_stored[region]} invalid"))
        rows.append(("verdict", "PASS" if self.passed else "FAIL"))
        width = max(len(label) for label, _ in rows)
        return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)


def run(
    environment: LocalEnvironment, *, payments: int, clients: int, region: str, rate: float | None = None
) -> Audit:
    """Send the planned load to ``region`` and audit every region's table once it has drained."""
    planned = plan_requests(payments)
    outcome, seconds = send_all(environment.api_url(region), environment.api_key, planned, clients, rate)
    # A payment the client never got a 202 for is not owed; every acknowledged one is.
    valid_ids = {r.body["transaction_id"] for r in planned if r.valid} & outcome.acknowledged
    invalid_ids = {r.body["transaction_id"] for r in planned if not r.valid}
    regions = [plan.region for plan in environment.regions]

    drain_started = time.perf_counter()
    deadline = drain_started + DRAIN_TIMEOUT_SECONDS
    counts = {r: stored_counts(environment, r) for r in regions}
    while time.perf_counter() < deadline and not all(valid_ids <= set(c) for c in counts.values()):
        time.sleep(AUDIT_INTERVAL_SECONDS)
        counts = {r: stored_counts(environment, r) for r in regions}
    drain_seconds = time.perf_counter() - drain_started
    time.sleep(1)  # a late duplicate would show up now
    counts = {r: stored_counts(environment, r) for r in regions}

    ordered = sorted(outcome.latencies_ms)
    return Audit(
        sent=len(planned),
        clients=clients,
        seconds=seconds,
        statuses=dict(outcome.statuses),
        connection_retries=outcome.connection_retries,
        p50_ms=statistics.median(ordered),
        p99_ms=ordered[int(len(ordered) * 0.99) - 1],
        valid=len(valid_ids),
        stored={r: len(valid_ids & set(c)) for r, c in counts.items()},
        doubled={r: sum(1 for t in valid_ids if c[t] > 1) for r, c in counts.items()},
        missing={r: len(valid_ids - set(c)) for r, c in counts.items()},
        invalid_stored={r: len(invalid_ids & set(c)) for r, c in counts.items()},
        drain_seconds=drain_seconds,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load_run", description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=10_000, help="requests in all (default 10000)")
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients (default 20)")
    parser.add_argument("--rate", type=float, help="requests per second across all clients (default: unpaced)")
    parser.add_argument("--log-dir", type=Path, default=Path(".localenv/load-run"), help="where process output goes")
    args = parser.parse_args(argv)

    replication.VERBOSE = False
    plans = [RegionPlan("us-east-1", free_port()), RegionPlan("us-east-2", free_port())]
    with LocalEnvironment(plans, log_dir=args.log_dir) as env:
        audit = run(env, payments=args.payments, clients=args.clients, region="us-east-1", rate=args.rate)
        print(audit.report(), flush=True)
    return 0 if audit.passed else 1


if __name__ == "__main__":
    sys.exit(main())
