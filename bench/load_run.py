"""Load run on the local environment: many payments from concurrent clients, then an audit.

Sends payments to ``POST /validate`` from concurrent threads of a merchant's code, through the
client we ship (:mod:`payments_client`: one key, both regional endpoints, its retries and its
choice of region): unique valid payments, resends of them (half with the same
``Idempotency-Key``, half a plain resend with a new one) and invalid ones. Prints
a progress line every 10 s. Then waits for the queue to drain and for the peer region to catch
up (as long as the measured replication lag justifies) and audits both regions' tables.

Whatever happens (timeouts, resets, the local AWS dying mid-run, Ctrl-C), the run ends with the
audit: acknowledged payments stored exactly once in each region, missing, doubled, still queued
or dead-lettered, errors the caller saw after the client's retries, the client's moves between
regions, latency, replication lag. It exits non-zero when a promise
failed, and names which.

    python -m bench.load_run [--payments 10000] [--clients 20] [--rate 15]      (make load)
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bench.common import percentile
from localenv import replication
from localenv.environment import LocalEnvironment, RegionPlan
from localenv.network import free_port
from localenv.progress import Heartbeat
from payments_client import PaymentsClient, PaymentsUnavailable, RetryPolicy

# What a call to the local AWS raises when it is gone or failing.
AWS_ERRORS = (BotoCoreError, ClientError)

DUPLICATE_SHARE = 0.10
INVALID_SHARE = 0.10
REQUEST_TIMEOUT_SECONDS = 30
# What /validate answers a valid payment (or its resend) and an invalid one.
EXPECTED_STATUSES = frozenset({202, 422})
# The client's budget per call: a run whose AWS has died still ends within minutes.
CLIENT_POLICY = RetryPolicy(max_attempts=5, timeout=REQUEST_TIMEOUT_SECONDS, base_delay=0.2, max_delay=1.0)
POLL_SECONDS = 2
# The drain ends when the queue is empty, or when nothing was processed for this long.
STALL_SECONDS = 60
DRAIN_TIMEOUT_SECONDS = 900
# The peer region is waited for 10x the largest replication lag measured (AWS's guidance for
# an evacuation), at least this long.
MIN_PEER_WAIT_SECONDS = 5.0
PEER_WAIT_LAG_FACTOR = 10
# The promise on replication: p99 of the lag, measured on every replicated payments-table change.
REPLICATION_LAG_P99_GOAL_MS = 5000


@dataclass(frozen=True)
class Request:
    """One request of the run and what the audit expects of it."""

    body: dict[str, Any]
    valid: bool
    idempotency_key: str | None = None


@dataclass
class Outcome:
    """What the clients observed, every request counted once."""

    statuses: Counter[int] = field(default_factory=Counter)
    # Calls that failed for the caller once the client's retries were spent.
    caller_errors: int = 0
    retried: int = 0  # attempts the client retried (connection errors, timeouts, 429, 5xx)
    moves: list[str] = field(default_factory=list)  # the client's changes of region, with why
    latencies_ms: list[float] = field(default_factory=list)
    acknowledged: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

    @property
    def finished(self) -> int:
        return self.answered + self.caller_errors

    def record(self, status: int, latency_ms: float, transaction_id: str) -> None:
        with self.lock:
            self.statuses[status] += 1
            self.latencies_ms.append(latency_ms)
            if status == 202:
                self.acknowledged.add(transaction_id)

    def count(self, what: str, n: int = 1) -> None:
        with self.lock:
            setattr(self, what, getattr(self, what) + n)


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
        Request(
            body={
                "transaction_id": f"bad-{n:06d}",
                "customer_id": "c",
                "amount": rng.choice(["-1", "0", "1.234", "abc"]),
                "currency": "USD",
            },
            valid=False,
        )
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
    api_urls: list[str],
    api_key: str,
    planned: list[Request],
    clients: int,
    rate: float | None = None,
    outcome: Outcome | None = None,
    policy: RetryPolicy = CLIENT_POLICY,
) -> tuple[Outcome, float]:
    """Send every request from ``clients`` threads through one client; returns what they saw and the seconds.

    Never raises for a request: a call that fails once the client's retries are spent is counted
    as an error the caller saw, and the run goes on.
    """
    outcome = outcome or Outcome()
    pacer = Pacer(rate)
    client = PaymentsClient(api_key, endpoints=api_urls, policy=policy)

    def send(request: Request) -> None:
        pacer.wait()
        started = time.perf_counter()
        try:
            answer = client.validate(request.body, idempotency_key=request.idempotency_key)
        except PaymentsUnavailable as error:
            outcome.count("retried", error.attempts - 1)
            outcome.count("caller_errors")
            return
        outcome.count("retried", answer.attempts - 1)
        outcome.record(answer.status, (time.perf_counter() - started) * 1000, request.body["transaction_id"])

    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=clients) as pool:
            list(pool.map(send, planned))
    finally:
        outcome.moves = [f"{m.from_endpoint} -> {m.to_endpoint} ({m.reason})" for m in client.moves]
    return outcome, time.perf_counter() - started


def stored_counts(environment: LocalEnvironment, region: str) -> Counter[str] | None:
    """How many payment records each transaction id has in ``region``'s table; None if unreadable."""
    try:
        return environment.payment_records(region)
    except AWS_ERRORS:  # the local AWS is gone or failing: the audit says so instead of crashing
        return None


def queue_depth(environment: LocalEnvironment, region: str, queue: str) -> int | None:
    """Messages waiting or in flight in one of ``region``'s queues; None if unreadable."""
    resources = environment.resources[region]
    url = resources.payment_queue_url if queue == "queue" else resources.payment_dlq_url
    try:
        attributes = environment.client("sqs", region).get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
    except AWS_ERRORS:
        return None
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def stored_estimate(environment: LocalEnvironment, region: str) -> int | None:
    """Payments in ``region``'s table, cheaply (a claim and a record each); None if unreadable."""
    try:
        table = environment.client("dynamodb", region).describe_table(
            TableName=environment.resources[region].payments_table
        )["Table"]
    except AWS_ERRORS:
        return None
    return int(table.get("ItemCount", 0)) // 2


def _unknown(value: int | None) -> str:
    return "?" if value is None else str(value)


@dataclass(frozen=True)
class RegionAudit:
    """One region's table against the acknowledged payments."""

    region: str
    readable: bool
    stored_once: int = 0
    missing: int = 0
    doubled: int = 0
    invalid_stored: int = 0
    queued: int | None = None
    dead_lettered: int | None = None


@dataclass(frozen=True)
class Audit:
    """The run's figures and which promises held."""

    planned: int
    clients: int
    seconds: float
    statuses: dict[int, int]
    caller_errors: int
    retried: int
    moves: list[str]
    p50_ms: float
    p99_ms: float
    acknowledged: int
    regions: dict[str, RegionAudit]
    drain_seconds: float
    peer_wait_seconds: float
    lag_p50_ms: float
    lag_p99_ms: float
    lag_max_ms: float
    interrupted: str | None = None

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    @property
    def valid(self) -> int:
        return self.acknowledged

    @property
    def stored(self) -> dict[str, int]:
        return {r: a.stored_once for r, a in self.regions.items()}

    @property
    def doubled(self) -> dict[str, int]:
        return {r: a.doubled for r, a in self.regions.items()}

    @property
    def invalid_stored(self) -> dict[str, int]:
        return {r: a.invalid_stored for r, a in self.regions.items()}

    def broken_promises(self) -> list[str]:
        """Each promise the run broke, in words; empty when the run passed."""
        broken = []
        if self.interrupted:
            broken.append(f"the run did not finish: {self.interrupted}")
        if self.server_errors:
            broken.append(f"{self.server_errors} answers were 5xx")
        unexpected = sum(n for status, n in self.statuses.items() if status not in EXPECTED_STATUSES)
        if unexpected:
            broken.append(f"{unexpected} answers were neither 202 (accepted) nor 422 (invalid)")
        if self.caller_errors:
            broken.append(f"{self.caller_errors} calls failed for the caller after the client's retries")
        for region, audit in self.regions.items():
            if not audit.readable:
                broken.append(
                    f"{region}'s table could not be read (is the local AWS up?): "
                    f"{self.acknowledged} acknowledged payments unchecked there"
                )
                continue
            for count, what in (
                (audit.missing, "missing"),
                (audit.doubled, "stored twice"),
                (audit.invalid_stored, "invalid payments stored"),
            ):
                if count:
                    broken.append(f"{region}: {count} {what}")
            if audit.queued:
                broken.append(f"{region}: {audit.queued} messages still queued")
            if audit.dead_lettered:
                broken.append(f"{region}: {audit.dead_lettered} messages dead-lettered")
        if self.lag_p99_ms > REPLICATION_LAG_P99_GOAL_MS:
            broken.append(
                f"replication lag p99 {self.lag_p99_ms / 1000:.1f} s, over the "
                f"{REPLICATION_LAG_P99_GOAL_MS / 1000:.0f} s goal"
            )
        return broken

    @property
    def passed(self) -> bool:
        return not self.broken_promises()

    def report(self) -> str:
        finished = sum(self.statuses.values()) + self.caller_errors
        rows = [
            (
                "requests sent",
                (
                    f"{finished} of {self.planned} from {self.clients} concurrent clients in "
                    f"{self.seconds:.1f} s ({finished / max(self.seconds, 0.001):.0f} requests/s)"
                ),
            ),
            (
                "responses",
                ", ".join(f"{status}: {n}" for status, n in sorted(self.statuses.items())) or "none",
            ),
            ("5xx responses", str(self.server_errors)),
            (
                "caller-visible errors",
                f"{self.caller_errors} after the client's retries ({self.retried} attempts retried)",
            ),
            ("client moves between regions", "; ".join(self.moves) or "none"),
            ("latency /validate", f"p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms"),
            ("payments acknowledged", str(self.acknowledged)),
            ("queue drained", f"{self.drain_seconds:.1f} s after the last request"),
            (
                "replication lag",
                (
                    f"p50 {self.lag_p50_ms / 1000:.2f} s, p99 {self.lag_p99_ms / 1000:.2f} s, "
                    f"max {self.lag_max_ms / 1000:.2f} s (peer waited for {self.peer_wait_seconds:.1f} s)"
                ),
            ),
        ]
        for region, audit in self.regions.items():
            if not audit.readable:
                rows.append((f"stored in {region}", "unreadable: the local AWS did not answer"))
                continue
            rows.append(
                (
                    f"stored in {region}",
                    (
                        f"{audit.stored_once} exactly once, {audit.missing} missing, "
                        f"{audit.doubled} doubled, {audit.invalid_stored} invalid"
                    ),
                )
            )
            rows.append(
                (
                    f"queues in {region}",
                    f"{_unknown(audit.queued)} still queued, {_unknown(audit.dead_lettered)} dead-lettered",
                )
            )
        broken = self.broken_promises()
        rows.append(("verdict", "PASS" if not broken else "FAIL: " + "; ".join(broken)))
        width = max(len(label) for label, _ in rows)
        return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)


class LoadRun:
    """One load run against an environment: send, drain, wait for the peer, audit."""

    def __init__(
        self,
        environment: LocalEnvironment,
        *,
        payments: int,
        clients: int,
        region: str,
        rate: float | None = None,
        policy: RetryPolicy = CLIENT_POLICY,
    ) -> None:
        self.env = environment
        self.policy = policy
        self.planned = plan_requests(payments)
        self.clients = clients
        self.region = region
        self.rate = rate
        self.regions = [plan.region for plan in environment.regions]
        self.table = next(iter(environment.resources.values())).payments_table
        self.outcome = Outcome()
        self.phase = "sending"

    def lag_ms(self) -> list[float]:
        return self.env.replication_lag_ms(self.table)

    def progress(self) -> str:
        """The figures of one progress line."""
        lag = self.lag_ms()
        recent = lag[-200:]
        stored = ", ".join(f"{r} {_unknown(stored_estimate(self.env, r))}" for r in self.regions)
        return (
            f"{self.phase}; sent {self.outcome.finished}/{len(self.planned)}, "
            f"acknowledged {len(self.outcome.acknowledged)}, stored {stored}, "
            f"queue {_unknown(queue_depth(self.env, self.region, 'queue'))}, "
            f"DLQ {_unknown(queue_depth(self.env, self.region, 'dlq'))}, "
            f"replication lag p99 {percentile(recent, 0.99) / 1000:.1f} s"
        )

    def execute(self) -> Audit:
        """Send, drain and audit; whatever goes wrong ends in the audit, never in a traceback."""
        seconds = drain = peer_wait = 0.0
        interrupted = None
        started = time.perf_counter()
        try:
            _, seconds = send_all(
                [
                    self.env.api_url(self.region),
                    *(self.env.api_url(r) for r in self.regions if r != self.region),
                ],
                self.env.api_key,
                self.planned,
                self.clients,
                self.rate,
                self.outcome,
                self.policy,
            )
            self.phase = "draining"
            drain = self._drain()
            self.phase = "waiting for the peer region"
            peer_wait = self._wait_for_peer()
        except KeyboardInterrupt:
            interrupted = "interrupted (Ctrl-C)"
        except Exception as error:  # noqa: BLE001 - whatever it was, the audit still tells what happened
            interrupted = f"{type(error).__name__}: {error}"
        if not seconds:
            seconds = time.perf_counter() - started
        self.phase = "auditing"
        return self._audit(seconds, drain, peer_wait, interrupted)

    def _owed(self) -> set[str]:
        # A payment the client never got a 202 for is not owed; every acknowledged one is.
        valid_ids = {r.body["transaction_id"] for r in self.planned if r.valid}
        return valid_ids & self.outcome.acknowledged

    def _drain(self) -> float:
        """Wait until the queue is empty, or nothing moves for STALL_SECONDS; returns the seconds."""
        began = last_change = time.perf_counter()
        last = None
        while time.perf_counter() - began < DRAIN_TIMEOUT_SECONDS:
            depth = queue_depth(self.env, self.region, "queue")
            if depth == 0 or depth is None:  # drained, or the local AWS no longer answers
                break
            state = (depth, stored_estimate(self.env, self.region))
            if state != last:
                last, last_change = state, time.perf_counter()
            elif time.perf_counter() - last_change > STALL_SECONDS:
                break
            time.sleep(POLL_SECONDS)
        return time.perf_counter() - began

    def _wait_for_peer(self) -> float:
        """Wait for the other regions to hold as many items as this one, as long as the lag justifies.

        Item counts are cheap to read; the audit that follows compares every transaction id once.
        """
        began = time.perf_counter()
        budget = max(MIN_PEER_WAIT_SECONDS, PEER_WAIT_LAG_FACTOR * max(self.lag_ms(), default=0.0) / 1000)
        while time.perf_counter() - began < budget:
            counts = [stored_estimate(self.env, r) for r in self.regions]
            if None in counts or len(set(counts)) == 1:
                break
            time.sleep(POLL_SECONDS)
        time.sleep(1)  # a late duplicate would show up now
        return time.perf_counter() - began

    def _audit(self, seconds: float, drain: float, peer_wait: float, interrupted: str | None) -> Audit:
        owed = self._owed()
        invalid_ids = {r.body["transaction_id"] for r in self.planned if not r.valid}
        regions = {}
        for region in self.regions:
            counts = stored_counts(self.env, region)
            if counts is None:
                regions[region] = RegionAudit(region, readable=False)
                continue
            regions[region] = RegionAudit(
                region,
                readable=True,
                stored_once=sum(1 for t in owed if counts[t] == 1),
                missing=len(owed - set(counts)),
                doubled=sum(1 for t in owed if counts[t] > 1),
                invalid_stored=len(invalid_ids & set(counts)),
                queued=queue_depth(self.env, region, "queue"),
                dead_lettered=queue_depth(self.env, region, "dlq"),
            )
        latencies = list(self.outcome.latencies_ms)
        lag = self.lag_ms()
        return Audit(
            planned=len(self.planned),
            clients=self.clients,
            seconds=seconds,
            statuses=dict(self.outcome.statuses),
            caller_errors=self.outcome.caller_errors,
            retried=self.outcome.retried,
            moves=list(self.outcome.moves),
            p50_ms=statistics.median(latencies) if latencies else 0.0,
            p99_ms=percentile(latencies, 0.99),
            acknowledged=len(owed),
            regions=regions,
            drain_seconds=drain,
            peer_wait_seconds=peer_wait,
            lag_p50_ms=percentile(lag, 0.50),
            lag_p99_ms=percentile(lag, 0.99),
            lag_max_ms=max(lag, default=0.0),
            interrupted=interrupted,
        )


def run(
    environment: LocalEnvironment,
    *,
    payments: int,
    clients: int,
    region: str,
    rate: float | None = None,
    progress_seconds: float | None = None,
    on_started: Callable[[LoadRun], None] | None = None,
    policy: RetryPolicy = CLIENT_POLICY,
) -> Audit:
    """Send the planned load to ``region`` and audit every region; prints progress when asked."""
    load = LoadRun(environment, payments=payments, clients=clients, region=region, rate=rate, policy=policy)
    if on_started is not None:
        on_started(load)
    if progress_seconds is None:
        return load.execute()
    with Heartbeat("load", load.progress, interval=progress_seconds, stream=sys.stdout):
        return load.execute()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load_run", description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=10_000, help="requests in all (default 10000)")
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients (default 20)")
    parser.add_argument(
        "--rate", type=float, help="requests per second across all clients (default: unpaced)"
    )
    parser.add_argument(
        "--log-dir", type=Path, default=Path(".localenv/load-run"), help="where process output goes"
    )
    args = parser.parse_args(argv)

    replication.VERBOSE = False
    plans = [RegionPlan("us-east-1", free_port()), RegionPlan("us-east-2", free_port())]
    print(
        f"load: {args.payments} requests from {args.clients} clients"
        + (f" at {args.rate:g}/s" if args.rate else "")
        + f"; process output in {args.log_dir}",
        flush=True,
    )
    with LocalEnvironment(plans, log_dir=args.log_dir) as env:
        audit = run(
            env,
            payments=args.payments,
            clients=args.clients,
            region="us-east-1",
            rate=args.rate,
            progress_seconds=10,
        )
        print(audit.report(), flush=True)
    return 0 if audit.passed else 1


if __name__ == "__main__":
    sys.exit(main())
