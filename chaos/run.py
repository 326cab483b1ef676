"""One schedule's history: merchants paying through ``payments_client`` while its faults strike."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import requests

from chaos.properties import CallerError, Findings, Ledger, check, region_of
from chaos.schedule import Schedule
from chaos.world import RegionGateway, World
from payments_client import PaymentsClient, PaymentsUnavailable, RetryPolicy

# The merchants' client, its waits scaled down as the world's are (the rules are the shipped ones):
# a move after an attempt of unknown outcome waits out a replication window longer than the local
# replication's lag, and the budget of attempts outlasts the domain's move by Route 53.
POLICY = RetryPolicy(
    max_attempts=8,
    timeout=5.0,
    base_delay=0.02,
    max_delay=0.2,
    move_after_failures=2,
    health_interval=0.2,
    health_timeout=2.0,
    return_after=3600.0,
    replication_window=1.0,
)
PAUSE_BETWEEN_PAYMENTS = 0.02
AMOUNT = Decimal("12.34")


def merchant_client(world: World, home: int, api_key: str) -> PaymentsClient:
    """A merchant's client: both regional endpoints, ``home`` first; or one domain (``home`` -1)."""
    session = requests.Session()
    gateway = RegionGateway(world)
    session.mount("http://", gateway)
    session.mount("https://", gateway)
    if home < 0:
        return PaymentsClient(api_key, domain="domain.chaos", policy=POLICY, session=session)
    endpoints = [f"http://region-{home}.chaos", f"http://region-{1 - home}.chaos"]
    return PaymentsClient(api_key, endpoints=endpoints, policy=POLICY, session=session)


def run_schedule(world: World, schedule: Schedule) -> Findings:
    """Run ``schedule`` in ``world`` and check every promise over what happened."""
    world.begin(schedule)
    ledger = Ledger(payments=schedule.merchants * schedule.payments_each)
    lock = threading.Lock()
    prefix = world.schedule_prefix()

    def merchant(number: int) -> None:
        name = f"merchant-{number}"
        home = schedule.homes[number]
        client = merchant_client(world, home, world.merchant_keys[name])
        for n in range(schedule.payments_each):
            transaction = f"{prefix}m{number}-{n}"
            world.index_payment(transaction, number * schedule.payments_each + n)
            payment = {
                "transaction_id": transaction,
                "customer_id": f"c{number}",
                "amount": str(AMOUNT),
                "currency": "USD",
            }
            began = world.elapsed()

            def failed(text: str, began: float = began, transaction: str = transaction) -> None:
                with lock:
                    ledger.errors.append(
                        CallerError(name, home, began, world.elapsed(), f"{name}/{transaction}: {text}")
                    )

            try:
                answer = client.process(payment, idempotency_key=transaction)
            except PaymentsUnavailable as error:
                failed(str(error) + ("" if error.idempotency_key == transaction else " (without its key)"))
            except Exception as error:  # noqa: BLE001 - anything that escapes the client is the caller's error
                failed(f"{type(error).__name__} escaped the client, without its key")
            else:
                if answer.ok:
                    with lock:
                        ledger.acknowledged.append((name, transaction, AMOUNT))
                else:
                    failed(f"HTTP {answer.status} {answer.body}")
            time.sleep(PAUSE_BETWEEN_PAYMENTS)
        started = world.history.started
        with lock:
            for move in client.moves:
                left = region_of(move.from_endpoint)
                if left is not None:
                    ledger.moves.append((name, move.at - started, left, move.reason))

    threads = [
        threading.Thread(target=merchant, args=(n,), name=f"merchant {n}") for n in range(schedule.merchants)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    world.settle()
    world.reannounce()
    found = check(world, ledger)
    world.clear()
    return found
