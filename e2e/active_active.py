"""The active-active journey: both regions take payments as deployed, and one region's API breaks under them.

The stacks synthesized with ``-c topology=active-active`` (and a strong-consistency witness) are
deployed beside the default ones, under their own environment suffix. Merchants' clients with
affinities split between the regions pay through both at once; each payment is stored once and
announced once, by the region that stored it. Then the primary's API function breaks in
mid-traffic (a deploy that points it at a handler that does not exist, so every invocation
fails), the clients ride through with ``payments_client`` and no decision by anyone, and the
function is restored.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

from chalicelib.items import ANNOUNCED_BY, unscoped
from chalicelib.names import ResourceNames
from chalicelib.outbox import PROCESSED_EVENT
from e2e.journey import Deployed, Journey, Rider, wait_for

# Payments each rider makes before the fault, and how long the fault lasts.
WARM_PAYMENTS = 5
BROKEN_SECONDS = 6.0
RIDERS_PER_REGION = 2
BROKEN_HANDLER = "app.not_a_handler"


class ActiveActiveJourney(Journey):
    """The steps of ``make e2e`` for the active-active stacks, each printed by ``steps``."""

    def __init__(self, deployed: Deployed, steps: Any, gaps: Any | None = None) -> None:
        super().__init__(deployed, steps, gaps)
        self.riders: list[Rider] = []

    def run(self) -> None:
        from operations.clients import ClientRegistry

        self.merchant = f"e2e-aa-{time.time_ns() % 10**8:08d}"
        self.registry = ClientRegistry(
            names=ResourceNames(self.d.suffix), regions=self.d.regions, client=self.d.client
        )
        self.steps.run(f"active-active: payments-dr clients create {self.merchant}", self.create)
        self.steps.run(
            "active-active: /health 200 in both regions", lambda: self.health_is(200, *self.d.regions)
        )
        subscribers = self.steps.run(
            "active-active: subscribe a test queue to transactions in both regions", self.subscribe
        )
        self.steps.run(
            f"active-active: {2 * RIDERS_PER_REGION} merchants pay, half at home in each region: both take payments",
            self.both_take_payments,
        )
        self.steps.run(
            f"active-active: {self.primary}'s API function broken in mid-traffic for {BROKEN_SECONDS:.0f} s "
            "(every invocation fails), then restored",
            self.break_primary_function,
        )
        self.steps.run(
            "active-active: the ride: 0 caller-visible errors, 0 missing, 0 doubled",
            self.ridden_through,
        )
        self.steps.run(
            "active-active: each payment announced once, by the region that stored it",
            lambda: self.announced_once(subscribers),
        )

    def create(self) -> str:
        report = self.registry.create(self.merchant)
        if not report.ok or report.value is None:
            raise AssertionError(report.render())
        self.d.api_key = report.value
        return "; ".join(f"{o.region}: {o.detail}" for o in report.outcomes)

    def both_take_payments(self) -> str:
        urls = [self.d.api_urls[r] for r in self.d.regions]
        for home in (0, 1):
            for _ in range(RIDERS_PER_REGION):
                # The home region first: the client's affinity, kept until that region fails.
                rider = Rider(self.merchant, self.d.api_key, urls[home:] + urls[:home])
                rider.start()
                self.riders.append(rider)

        def warm() -> bool:
            return all(len(r.acknowledged) >= WARM_PAYMENTS for r in self.riders)

        wait_for("every rider's first payments", warm)
        shares = Counter(endpoint for r in self.riders for endpoint in r.acknowledged.values())
        total = sum(shares.values())
        by_region = {region: shares[self.d.api_urls[region]] / total for region in self.d.regions}
        # Both regions carry warm traffic. The shares are those of a few seconds: one region's first
        # invocations in the emulator start its functions (the drill measures the split, 40 % each).
        if min(by_region.values()) < 0.25:
            raise AssertionError(f"one region took almost nothing: {by_region}")
        return ", ".join(f"{region} {share:.0%}" for region, share in by_region.items())

    def break_primary_function(self) -> str:
        functions = self.d.client("lambda", self.primary)
        name = ResourceNames(self.d.suffix).validator_function
        handler = functions.get_function_configuration(FunctionName=name)["Handler"]
        before = {id(r): len(r.acknowledged) for r in self.riders}
        functions.update_function_configuration(FunctionName=name, Handler=BROKEN_HANDLER)
        broken_at = time.monotonic()
        time.sleep(BROKEN_SECONDS)
        functions.update_function_configuration(FunctionName=name, Handler=handler)
        self.health_is(200, self.primary)
        moved = [
            r
            for r in self.riders
            if any(m.to_endpoint == self.d.api_urls[self.secondary] for m in r.client.moves)
        ]
        if not moved:
            raise AssertionError("no rider moved: the fault was not exercised")
        paid = {id(r): len(r.acknowledged) - before[id(r)] for r in self.riders}
        if not all(paid.values()):
            raise AssertionError(f"a rider made no payment through the fault: {paid}")
        seconds = [
            next(m.at for m in r.client.moves if m.to_endpoint == self.d.api_urls[self.secondary]) - broken_at
            for r in moved
        ]
        return (
            f"{len(moved)} of the riders at home in {self.primary} moved to {self.secondary} "
            f"({min(seconds):.1f}-{max(seconds):.1f} s after the break); every rider kept paying"
        )

    def ridden_through(self) -> str:
        return "; ".join(self.audited(rider) for rider in self.riders)

    def announced_once(self, subscribers: dict[str, str]) -> str:
        """Every payment of the riders on the transactions topics once, from the region that stored it.

        Once means one event id from one region; the same message delivered again (SNS delivers at
        least once) carries that id, and subscribers drop it.
        """
        names = ResourceNames(self.d.suffix)
        expected = {txn for r in self.riders for txn in r.acknowledged}
        stored_by: dict[str, str] = {}
        for page in (
            self.d.client("dynamodb", self.primary)
            .get_paginator("scan")
            .paginate(TableName=names.payments_table, ConsistentRead=True)
        ):
            for item in page["Items"]:
                owner, txn = unscoped(item["transaction_id"]["S"])
                if owner == self.merchant and txn in expected and ANNOUNCED_BY in item:
                    stored_by[txn] = item[ANNOUNCED_BY]["S"]
        heard: dict[str, set[tuple[str, str]]] = {}

        def drained() -> bool:
            for region, url in subscribers.items():
                sqs = self.d.client("sqs", region)
                while messages := sqs.receive_message(
                    QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1
                ).get("Messages", []):
                    for message in messages:
                        body = json.loads(message["Body"])
                        if body.get("client") == self.merchant and body.get("event") == PROCESSED_EVENT:
                            txn = body["payment"]["transaction_id"]
                            heard.setdefault(txn, set()).add((region, body["id"]))
                    sqs.delete_message_batch(
                        QueueUrl=url,
                        Entries=[
                            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                            for i, m in enumerate(messages)
                        ],
                    )
            return set(heard) >= expected

        wait_for("every payment announced", drained)
        twice = sorted(t for t, publications in heard.items() if len(publications) > 1)
        elsewhere = sorted(
            t for t, publications in heard.items() if {r for r, _ in publications} != {stored_by.get(t)}
        )
        if twice or elsewhere:
            raise AssertionError(
                f"announced more than once {twice[:5]}; by another region than stored it {elsewhere[:5]}"
            )
        counts = Counter(next(iter(publications))[0] for publications in heard.values())
        return f"{len(heard)} payments, each once: " + ", ".join(
            f"{r} {n}" for r, n in sorted(counts.items())
        )
