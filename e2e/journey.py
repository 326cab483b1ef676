"""A payment's whole journey through the deployed stacks, and a failover and failback.

Everything goes through what the stacks deployed: the API Gateway URLs of both regions with one
merchant client's key (made by ``payments-dr clients``, as an operator would), the queues,
tables, topics and functions CloudFormation created; the failover is ridden by the merchants'
client (:mod:`payments_client`) with that one key. The same
driver runs against AWS (``python -m e2e.journey --aws``, see docs/deploying.md).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import requests
from botocore.exceptions import ClientError

from chalicelib.canary import CANARY_CUSTOMER
from chalicelib.items import unscoped
from chalicelib.names import (
    DEFAULT_ENVIRONMENT_SUFFIX,
    DEFAULT_PRIMARY_REGION,
    DEFAULT_SECONDARY_REGION,
    ResourceNames,
)
from chalicelib.schema import API_KEY_SECRET_FIELD, CANARY_CLIENT
from localenv.provision import local_credentials
from operations.clients import ClientRegistry
from operations.targets import Target
from payments_client import PaymentsClient, PaymentsUnavailable, RetryPolicy

ROOT = Path(__file__).resolve().parents[1]
WAIT_SECONDS = 60
HTTP_TIMEOUT_SECONDS = 30
# The calls of a merchant's client after a fault: eight attempts, up to 5 s apart.
RIDE_SETTLE_SECONDS = 60
# How often make e2e replaces the primary's API function under a paying merchant.
REPLACEMENTS = 5
# Merchants paying at once while it is replaced: requests in flight at each replacement.
RIDERS_UNDER_REPLACEMENT = 4


@dataclass
class Deployed:
    """One deployed environment: both regions' stack outputs and how to reach them."""

    suffix: str
    regions: tuple[str, str]
    outputs: dict[str, dict[str, str]]  # per region
    api_urls: dict[str, str]
    client: Callable[[str, str], Any]
    work_dir: Path
    endpoint: str | None = None
    # The one key of the merchant client the journey creates (both regions accept it).
    api_key: str = ""

    @classmethod
    def from_outputs(
        cls,
        stack_outputs: dict[str, dict[str, str]],
        client: Callable[[str, str], Any],
        work_dir: Path,
        *,
        endpoint: str | None = None,
    ) -> Deployed:
        """From the outputs of the regional stacks (those with a ``Region`` output), primary first."""
        named = sorted((name, o) for name, o in stack_outputs.items() if "APIEndpoint" in o)
        regional = [o for name, o in sorted(named, key=lambda item: not item[0].endswith("Primary"))]
        outputs = {o["Region"]: o for o in regional}
        regions = (regional[0]["Region"], regional[1]["Region"])
        suffix = regional[0]["PaymentsTableName"].removeprefix("payments-")
        api_urls = {
            region: cls._reachable(o["APIEndpoint"], o["APIId"], endpoint) for region, o in outputs.items()
        }
        return cls(suffix, regions, outputs, api_urls, client, work_dir, endpoint)

    @staticmethod
    def _reachable(api_endpoint: str, api_id: str, endpoint: str | None) -> str:
        """The deployed stage's URL; in the emulator, its execute-api path on the emulator's port."""
        if endpoint is None:
            return api_endpoint.rstrip("/")
        stage = api_endpoint.rstrip("/").rsplit("/", 1)[1]
        return f"{endpoint}/_aws/execute-api/{api_id}/{stage}"

    def write_state(self) -> Path:
        """What ``payments-dr --local --state-file`` needs to act on this deployment."""
        target = Target(
            environment_suffix=self.suffix,
            primary_region=self.regions[0],
            secondary_region=self.regions[1],
            endpoint_url=self.endpoint,
            api_urls=self.api_urls,
            # payments-dr reads only /health, which needs no key.
            api_key=self.api_key,
            credentials=local_credentials(operator=True),
        )
        self.work_dir.mkdir(parents=True, exist_ok=True)
        path = self.work_dir / "state.json"
        path.write_text(json.dumps(target.describe(), indent=2))
        return path


def failing_once(client: Callable[[str, str], Any], region: str, operation: str) -> Callable[[str, str], Any]:
    """``client``'s factory, with ``region``'s first ``operation`` failing as a throttled call does."""
    armed = [True]

    def factory(service: str, in_region: str) -> Any:
        made = client(service, in_region)
        if in_region != region:
            return made

        def fail(model: Any, **_: Any) -> None:
            if armed[0] and model.name == operation:
                armed[0] = False
                raise ClientError(
                    {"Error": {"Code": "TooManyRequestsException", "Message": "e2e: injected"}}, operation
                )

        made.meta.events.register("before-call", fail)
        return made

    return factory


def wait_for(what: str, probe: Callable[[], Any], timeout: float = WAIT_SECONDS) -> Any:
    """``probe()``'s first truthy result, polled until ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: nothing after {timeout:.0f} s")
        time.sleep(0.25)


class Rider:
    """A merchant's code paying steadily through :class:`payments_client.PaymentsClient` (one key)."""

    def __init__(self, name: str, api_key: str, endpoints: list[str]) -> None:
        self.name = name
        # Checks its region's /health every half second and may return a few seconds after
        # leaving: the defaults (10 s, 5 min) scaled down to the journey's pace.
        self.client = PaymentsClient(
            api_key,
            endpoints=endpoints,
            policy=RetryPolicy(health_interval=0.5, return_after=3.0, timeout=HTTP_TIMEOUT_SECONDS),
        )
        self.prefix = f"ride-{uuid.uuid4().hex[:6]}-"
        self.acknowledged: dict[str, str] = {}
        self.errors: list[str] = []
        # Attempts the client had to make again, inside calls that then succeeded.
        self.retried = 0
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._ride, name="rider", daemon=True)

    def start(self) -> str:
        self._thread.start()
        wait_for("the rider's first payment", lambda: self.acknowledged)
        return f"paying {self.client.endpoint}"

    def stop(self) -> None:
        self._stopped.set()
        # A call in its retries (waiting out a dead request's hold on its key) finishes first.
        self._thread.join(timeout=RIDE_SETTLE_SECONDS)

    def _ride(self) -> None:
        sequence = 0
        while not self._stopped.is_set():
            sequence += 1
            txn = f"{self.prefix}{sequence:05d}"
            body = {"transaction_id": txn, "customer_id": "cust-ride", "amount": "2.50", "currency": "USD"}
            try:
                answer = self.client.process(body)
            except PaymentsUnavailable as error:
                self.errors.append(str(error))
                continue
            self.retried += answer.attempts - 1
            if answer.status in (200, 201):
                self.acknowledged[txn] = answer.endpoint
            else:
                self.errors.append(f"{txn}: {answer.status} {answer.body}")
            self._stopped.wait(0.1)

    def moved_to(self, endpoint: str) -> str:
        wait_for(f"the client on {endpoint}", lambda: self.client.endpoint == endpoint)
        wait_for(
            f"a payment acknowledged by {endpoint}", lambda: list(self.acknowledged.values())[-1] == endpoint
        )
        move = self.client.moves[-1]
        return f"{move.reason}"

    def move_seconds(self, endpoint: str, since: float) -> float:
        return next(m.at for m in self.client.moves if m.to_endpoint == endpoint) - since

    def in_region(self, endpoint: str) -> int:
        return sum(1 for e in self.acknowledged.values() if e == endpoint)


class Steps:
    """Runs named steps, printing ``<result> <seconds> <step>`` for each."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def run(self, name: str, action: Callable[[], Any]) -> Any:
        began = time.monotonic()
        try:
            result = action()
        except Exception as error:
            print(f"FAIL {time.monotonic() - began:6.2f}s  {name}: {error}", flush=True)
            raise SystemExit(1) from error
        detail = f": {result}" if isinstance(result, str) and result else ""
        print(f"ok   {time.monotonic() - began:6.2f}s  {name}{detail}", flush=True)
        return result


class Journey:
    """The steps of ``make e2e`` after the deploy, each printed by ``steps``."""

    def __init__(
        self,
        deployed: Deployed,
        steps: Any,
        gaps: Any | None = None,
        *,
        redeploy_primary: Callable[[], str] | None = None,
    ) -> None:
        self.d, self.steps, self.gaps = deployed, steps, gaps
        self.redeploy_primary = redeploy_primary
        self.http = requests.Session()
        self.primary, self.secondary = deployed.regions
        self.failover_at = 0.0

    def call(
        self,
        method: str,
        region: str,
        path: str,
        body: Any = None,
        *,
        key: bool = True,
        api_key: str | None = None,
    ) -> requests.Response:
        headers = {"Content-Type": "application/json"}
        if key:
            headers["x-api-key"] = api_key or self.d.api_key
        return self.http.request(
            method,
            self.d.api_urls[region] + path,
            headers=headers,
            data=None if body is None else json.dumps(body),
            timeout=HTTP_TIMEOUT_SECONDS,
        )

    def run(self) -> None:
        self.merchant = f"e2e-{uuid.uuid4().hex[:8]}"
        self.registry = ClientRegistry(
            names=ResourceNames(self.d.suffix), regions=self.d.regions, client=self.d.client
        )
        self.steps.run(
            f"payments-dr clients create {self.merchant}: fails in {self.secondary} on its first run, the rerun "
            "completes it with the same value",
            self.create_client,
        )
        self.steps.run(
            f"the client's one key, as {self.primary} holds it, is accepted by {self.secondary}",
            self.one_key_in_both_regions,
        )
        subscribers = self.steps.run("subscribe a test queue to transactions in both regions", self.subscribe)
        self.steps.run("payment routes without the API key: 403 in both regions", self.refuse_without_key)
        self.steps.run("/health: 200 in both regions", lambda: self.health_is(200, *self.d.regions))
        txn = f"e2e-{uuid.uuid4().hex[:12]}"
        self.steps.run("POST /validate -> 202 accepted", lambda: self.validate(txn))
        self.steps.run(
            "SQS -> processor -> payments table (us-east-1)", lambda: self.stored(self.primary, txn)
        )
        self.steps.run("global table -> replica in the peer region", lambda: self.stored(self.secondary, txn))
        self.steps.run(
            "stream -> notifier -> transactions -> test subscriber",
            lambda: self.announced(subscribers[self.primary], txn),
        )
        self.steps.run(
            "a payment of the canary's client (its key from its secret) reaches no business subscriber",
            lambda: self.canary_payment_not_delivered(subscribers[self.primary]),
        )
        self.steps.run("POST /process twice: 201 then 200, one amount everywhere", self.process_twice)
        if self.d.endpoint:
            self.steps.run(
                "webhooks: the client registers an endpoint, pays, and its receiver gets the signed event, then again by a replay",
                self.webhook_delivered,
            )
        self.steps.run(
            "the id reused via /validate -> recorded as rejected, announced, not dead-lettered",
            lambda: self.rejected(subscribers[self.primary], txn),
        )
        self.steps.run(
            "observer: each region's canary alarm exists in its peer, the canary function on a schedule",
            self.observed,
        )
        self.steps.run(
            "an alarm notification the orchestrator fails on (invoked as SNS does): after its retries, "
            "in the control-failures queue that pages",
            self.orchestrator_failure_reaches_its_destination,
        )
        self.steps.run(
            "a second client with its own key: the same transaction id is its own payment, and "
            "neither client can read the other's (404, as for an id never used)",
            self.two_clients_apart,
        )
        self.steps.run(
            f"the API function in {self.primary} replaced under a paying merchant (its requests in flight die): "
            "0 caller-visible errors, 0 missing, 0 doubled",
            self.replaced_under_traffic,
        )
        rider = Rider(self.merchant, self.d.api_key, [self.d.api_urls[r] for r in self.d.regions])
        self.steps.run("a merchant's client starts paying (one key, both endpoints, no domain)", rider.start)
        self.steps.run(
            f"failover: an alarm on ops-alerts -> orchestrator takes {self.primary} out", self.failover
        )
        self.steps.run(f"/health: 503 in {self.primary}, 200 in {self.secondary}", self.failed_over)
        self.steps.run(
            f"the client moves to {self.secondary} with the same key",
            lambda: rider.moved_to(self.d.api_urls[self.secondary]),
        )
        if self.redeploy_primary is not None:
            self.steps.run(
                f"cdk deploy again, the flag's text changed: {self.primary} stays out of service",
                self.redeployed,
            )
        self.steps.run(
            f"failback with payments-dr against the deployment -> {self.primary} back", self.failback
        )
        self.steps.run(
            f"the client returns to {self.primary} once it is healthy again",
            lambda: rider.moved_to(self.d.api_urls[self.primary]),
        )
        self.steps.run("the ride: 0 caller-visible errors, 0 missing, 0 doubled", lambda: self.ridden(rider))
        self.steps.run(
            f"payments-dr clients revoke {self.merchant}: its key refused in both regions", self.revoke_client
        )
        self.steps.run(
            f"first deploy order: the alarm on the canary against {self.primary}, made in {self.secondary} "
            f"before that region's ops-alerts existed, reaches {self.secondary}'s orchestrator",
            self.observer_takes_primary_out,
        )
        self.steps.run(
            f"failback of {self.primary} once its canary alarm is OK again", self.observer_failback
        )

    def observer_takes_primary_out(self) -> str:
        """The alarm the primary's stack made in the secondary, on the secondary's topic, moves traffic."""
        name = ResourceNames(self.d.suffix).canary_alarm(self.primary)
        self.d.client("cloudwatch", self.secondary).set_alarm_state(
            AlarmName=name, StateValue="ALARM", StateReason="e2e: the canary's probes of the primary fail"
        )
        self.health_is(503, self.primary)
        flag = json.loads(
            self.d.client("ssm", self.primary).get_parameter(
                Name=ResourceNames(self.d.suffix).in_service_parameter
            )["Parameter"]["Value"]
        )
        return f"{self.primary} out of service by {flag.get('changed_by')}: {flag.get('reason')}"

    def observer_failback(self) -> str:
        name = ResourceNames(self.d.suffix).canary_alarm(self.primary)
        self.d.client("cloudwatch", self.secondary).set_alarm_state(
            AlarmName=name, StateValue="OK", StateReason="e2e: the canary passes again"
        )
        return self.failback()

    def redeployed(self) -> str:
        assert self.redeploy_primary is not None
        outcome = self.redeploy_primary()
        parameter = ResourceNames(self.d.suffix).in_service_parameter
        flag = json.loads(
            self.d.client("ssm", self.primary).get_parameter(Name=parameter)["Parameter"]["Value"]
        )
        if flag.get("in_service") is not False:
            raise AssertionError(f"the deploy put {self.primary} back in service: {flag}")
        self.health_is(503, self.primary)
        return f"{outcome}; the flag still says out of service, by {flag.get('changed_by')}"

    def create_client(self) -> str:
        """``clients create``, its first run failing in the secondary, then run again to completion."""
        failing = ClientRegistry(
            names=self.registry.names,
            regions=self.registry.regions,
            client=failing_once(self.d.client, self.secondary, "CreateUsagePlanKey"),
        )
        first = failing.create(self.merchant)
        outcomes = {o.region: o for o in first.outcomes}
        if first.ok or outcomes[self.secondary].ok or not outcomes[self.primary].ok:
            raise AssertionError(f"the injected failure did not show:\n{first.render()}")
        report = self.registry.create(self.merchant)
        if not report.ok or report.value is None or report.value != first.value:
            raise AssertionError(report.render())
        self.d.api_key = report.value
        return f"first run: {self.secondary} failed ({outcomes[self.secondary].detail}); rerun: " + "; ".join(
            f"{o.region}: {o.detail}" for o in report.outcomes
        )

    def two_clients_apart(self) -> str:
        other = f"{self.merchant}-b"
        report = self.registry.create(other)
        if not report.ok or report.value is None:
            raise AssertionError(report.render())
        other_key = report.value
        try:
            txn, unused = f"order-{uuid.uuid4().hex[:8]}", f"order-{uuid.uuid4().hex[:8]}"
            mine = {"transaction_id": txn, "customer_id": "cust-shared", "amount": "10.00", "currency": "USD"}
            theirs = {**mine, "amount": "77.00"}
            only_theirs = {**theirs, "transaction_id": f"order-{uuid.uuid4().hex[:8]}"}
            made = (
                self.call("POST", self.primary, "/process", mine).status_code,
                self.call("POST", self.primary, "/process", theirs, api_key=other_key).status_code,
                self.call("POST", self.primary, "/process", only_theirs, api_key=other_key).status_code,
            )
            if made != (201, 201, 201):
                raise AssertionError(f"the same id from two clients answered {made}, not 201s")
            for region in self.d.regions:

                def read(path: str, api_key: str | None = None, region: str = region) -> requests.Response:
                    return self.call("GET", region, path, api_key=api_key)

                def own_amounts(region: str = region) -> tuple[str, str] | None:
                    own = (read(f"/payments/{txn}"), read(f"/payments/{txn}", other_key))
                    if any(r.status_code != 200 for r in own):
                        return None
                    return (own[0].json()["amount"], own[1].json()["amount"])

                amounts = wait_for(f"both clients' {txn} readable in {region}", own_amounts)
                if amounts != ("10.00", "77.00"):
                    raise AssertionError(f"{region}: each client read {amounts}")
                history = read("/customers/cust-shared/payments", other_key).json()["payments"]
                if [p["amount"] for p in history if p["transaction_id"] == txn] != ["77.00"]:
                    raise AssertionError(f"{region}: the second client's history shows {history}")
                theirs_read = read(f"/payments/{only_theirs['transaction_id']}")
                never_used = read(f"/payments/{unused}")
                if (theirs_read.status_code, theirs_read.json()) != (404, never_used.json()):
                    raise AssertionError(
                        f"{region}: the other client's payment answered {theirs_read.status_code} "
                        f"{theirs_read.text}, an unused id {never_used.status_code} {never_used.text}"
                    )
        finally:
            self.registry.revoke(other)
        return f"{txn}: 10.00 for {self.merchant}, 77.00 for {other}, in both regions; histories apart"

    def canary_payment_not_delivered(self, queue_url: str) -> str:
        """A payment of the canary's client reaches no subscriber; a merchant's right after it does."""
        names = ResourceNames(self.d.suffix)
        secret = self.d.client("secretsmanager", self.primary).get_secret_value(
            SecretId=names.client_secret(CANARY_CLIENT)
        )
        canary_key = json.loads(secret["SecretString"])[API_KEY_SECRET_FIELD]
        probe = f"canary-{uuid.uuid4().hex[:12]}"
        merchant = f"e2e-{uuid.uuid4().hex[:12]}"
        body = {"customer_id": CANARY_CUSTOMER, "amount": "1.00", "currency": "USD"}
        made = (
            self.call(
                "POST", self.primary, "/process", {**body, "transaction_id": probe}, api_key=canary_key
            ),
            self.call("POST", self.primary, "/process", {**body, "transaction_id": merchant}),
        )
        if [r.status_code for r in made] != [201, 201]:
            raise AssertionError(f"answers {[r.status_code for r in made]}")
        seen = self.drain_subscriber(queue_url, until=merchant)
        if any(probe in message for message in seen):
            raise AssertionError(f"the canary's payment {probe} reached a business subscriber")
        return f"{merchant} delivered, {probe} (the canary's) not, among {len(seen)} messages"

    def drain_subscriber(self, queue_url: str, *, until: str) -> list[str]:
        """Every message the subscriber queue holds until one names ``until`` (bodies)."""
        sqs = self.d.client("sqs", self.primary)
        seen: list[str] = []

        def probe() -> bool:
            for message in sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            ).get("Messages", []):
                seen.append(message["Body"])
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            return any(until in body for body in seen)

        wait_for(f"{until} announced", probe)
        return seen

    def orchestrator_failure_reaches_its_destination(self) -> str:
        """An alarm notification the orchestrator fails on, invoked as SNS invokes it (asynchronously):
        after its retries the event is in the control-failures queue, whose alarm pages."""
        names = ResourceNames(self.d.suffix)
        alarm = {
            "AlarmName": f"e2e-{uuid.uuid4().hex[:8]}",
            "NewStateValue": "ALARM",
            "Region": "US East (N. Virginia)",
        }
        # An envelope without Subject and MessageAttributes, which Chalice's SNS event needs: the
        # function fails on every attempt, as it would on a changed envelope or a bad deploy.
        event = {
            "Records": [
                {
                    "EventSource": "aws:sns",
                    "EventVersion": "1.0",
                    "Sns": {"Type": "Notification", "Message": json.dumps(alarm), "TopicArn": "e2e"},
                }
            ]
        }
        self.d.client("lambda", self.primary).invoke(
            FunctionName=names.orchestrator_function,
            InvocationType="Event",
            Payload=json.dumps(event).encode(),
        )
        sqs = self.d.client("sqs", self.primary)
        url = sqs.get_queue_url(QueueName=names.control_failures_queue)["QueueUrl"]

        def failed() -> dict[str, Any] | None:
            for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
                "Messages", []
            ):
                if alarm["AlarmName"] in message["Body"]:
                    return json.loads(message["Body"])
            return None

        record = wait_for("the failed notification in the control-failures queue", failed, timeout=60)
        context = record.get("requestContext", {})
        return (
            f"{names.control_failures_queue}: {context.get('condition', 'failed')} after "
            f"{context.get('approximateInvokeCount', '?')} attempts; its alarm {names.control_failures_alarm} pages"
        )

    def one_key_in_both_regions(self) -> str:
        held = {}
        for region in self.d.regions:
            keys = self.d.client("apigateway", region).get_api_keys(
                nameQuery=ResourceNames(self.d.suffix).client_api_key(self.merchant), includeValues=True
            )["items"]
            held[region] = {k["value"] for k in keys}
        if held[self.primary] != held[self.secondary] or self.d.api_key not in held[self.primary]:
            raise AssertionError("the regions hold different values for the client")
        body = {
            "transaction_id": f"e2e-{uuid.uuid4().hex[:12]}",
            "customer_id": "cust-e2e",
            "amount": "1.00",
            "currency": "USD",
        }
        response = self.call("POST", self.secondary, "/process", body)
        if response.status_code != 201:
            raise AssertionError(f"{self.secondary} answered {response.status_code} {response.text}")
        return f"{self.secondary} answered 201"

    def ridden(self, rider: Rider) -> str:
        return (
            f"{self.audited(rider)}; moved {rider.move_seconds(self.d.api_urls[self.secondary], self.failover_at):.1f} "
            f"s after the failover began; in {self.secondary}: {rider.in_region(self.d.api_urls[self.secondary])}"
        )

    def audited(self, rider: Rider) -> str:
        """Stop ``rider`` and check its history: no caller error, every payment it was told of
        stored in both regions, none twice."""
        rider.stop()
        if rider.errors:
            raise AssertionError(f"the caller saw errors: {rider.errors[:5]}")
        names = ResourceNames(self.d.suffix)

        def counts(region: str) -> dict[str, int]:
            found: dict[str, int] = {}
            for page in (
                self.d.client("dynamodb", region)
                .get_paginator("scan")
                .paginate(TableName=names.payments_table, ConsistentRead=True)
            ):
                for item in page["Items"]:
                    owner, txn = unscoped(item["transaction_id"]["S"])
                    if owner == rider.name and txn.startswith(rider.prefix) and "customer_id" in item:
                        found[txn] = found.get(txn, 0) + 1
            return found

        def settled() -> dict[str, dict[str, int]] | None:
            both = {region: counts(region) for region in self.d.regions}
            return both if all(set(rider.acknowledged) <= set(c) for c in both.values()) else None

        both = wait_for("every acknowledged payment in both regions", settled)
        doubled = sorted(t for c in both.values() for t, n in c.items() if n > 1)
        missing = sorted(set(rider.acknowledged) - set(both[self.secondary]))
        if doubled or missing:
            raise AssertionError(f"missing {missing[:5]}, doubled {doubled[:5]}")
        return f"{len(rider.acknowledged)} payments acknowledged, {len(rider.errors)} caller errors, 0 missing, 0 doubled"

    def replaced_under_traffic(self) -> str:
        """The primary's API function replaced while a merchant pays: requests in flight die with it."""
        riders = [
            Rider(self.merchant, self.d.api_key, [self.d.api_urls[r] for r in self.d.regions])
            for _ in range(RIDERS_UNDER_REPLACEMENT)
        ]
        for rider in riders:
            rider.start()
        functions = self.d.client("lambda", self.primary)
        name = ResourceNames(self.d.suffix).validator_function
        for replacement in range(REPLACEMENTS):
            time.sleep(1.0)
            config = functions.get_function_configuration(FunctionName=name)
            variables = {
                **config.get("Environment", {}).get("Variables", {}),
                "E2E_REPLACEMENT": str(replacement),
            }
            functions.update_function_configuration(FunctionName=name, Environment={"Variables": variables})
        time.sleep(1.0)
        audits = [self.audited(rider) for rider in riders]
        if not any(r.retried for r in riders):
            raise AssertionError("the replacements caught no request in flight: the fault was not exercised")
        return (
            f"{'; '.join(audits)}; {name} replaced {REPLACEMENTS} times under them, "
            f"{sum(r.retried for r in riders)} attempts made again inside calls that succeeded"
        )

    def revoke_client(self) -> str:
        report = self.registry.revoke(self.merchant)
        if not report.ok:
            raise AssertionError(report.render())

        def refused() -> dict[str, int] | None:
            codes = {
                region: self.call("GET", region, "/payments/e2e-none").status_code
                for region in self.d.regions
            }
            return codes if set(codes.values()) == {403} else None

        return f"{wait_for('the revoked key refused', refused)}"

    def subscribe(self) -> dict[str, str]:
        queues = {}
        for region in self.d.regions:
            sqs, sns = self.d.client("sqs", region), self.d.client("sns", region)
            url = sqs.create_queue(QueueName=f"e2e-transactions-{uuid.uuid4().hex[:8]}")["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            topic = self.d.outputs[region]["TransactionTopicArn"]
            policy = {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "sns.amazonaws.com"},
                        "Action": "sqs:SendMessage",
                        "Resource": arn,
                        "Condition": {"ArnEquals": {"aws:SourceArn": topic}},
                    }
                ]
            }
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
            sns.subscribe(
                TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"}
            )
            queues[region] = url
        return queues

    def refuse_without_key(self) -> str:
        codes = {
            region: self.call("GET", region, "/payments/e2e-none", key=False).status_code
            for region in self.d.regions
        }
        if set(codes.values()) != {403}:
            raise AssertionError(f"expected 403 without a key, got {codes}")
        return ""

    def health_is(self, expected: int, *regions: str) -> str:
        def probe() -> dict[str, int] | None:
            codes = {r: self.call("GET", r, "/health", key=False).status_code for r in regions}
            return codes if set(codes.values()) == {expected} else None

        wait_for(f"/health {expected} in {', '.join(regions)}", probe)
        return ""

    def validate(self, txn: str) -> str:
        body = {"transaction_id": txn, "customer_id": "cust-e2e", "amount": "49.90", "currency": "USD"}
        response = self.call("POST", self.primary, "/validate", body)
        if response.status_code != 202 or response.json().get("status") != "accepted":
            raise AssertionError(f"{response.status_code} {response.text}")
        return ""

    def stored(self, region: str, txn: str) -> str:
        def probe() -> bool:
            response = self.call("GET", region, f"/payments/{txn}")
            return response.status_code == 200 and response.json()["amount"] == "49.90"

        began = time.monotonic()
        wait_for(f"{txn} readable in {region}", probe)
        return f"{region}, after {time.monotonic() - began:.1f} s"

    def announced(self, queue_url: str, txn: str, event: str = "payment.processed") -> str:
        sqs = self.d.client("sqs", self.primary)

        def probe() -> dict[str, Any] | None:
            for message in sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            ).get("Messages", []):
                body = json.loads(message["Body"])
                if txn in message["Body"] and body.get("event") == event:
                    return body
            return None

        found = wait_for(f"{event} of {txn}", probe)
        return str(found["event"])

    def webhook_delivered(self) -> str:
        """As deployed: registration with the client's key, a payment, the signed event at the receiver."""
        from localenv.webhook_receiver import LoopbackReceiver

        receiver = LoopbackReceiver(path="/payments-hook")
        try:
            made = self.call(
                "POST",
                self.primary,
                "/webhook-endpoints",
                {"url": receiver.url, "events": ["payment.processed"]},
            )
            if made.status_code != 201:
                raise AssertionError(f"registration answered {made.status_code} {made.text}")
            receiver.secrets.append(made.json()["secret"])
            txn = f"e2e-hook-{uuid.uuid4().hex[:8]}"
            body = {"transaction_id": txn, "customer_id": "cust-e2e", "amount": "3.10", "currency": "USD"}
            if self.call("POST", self.primary, "/process", body).status_code != 201:
                raise AssertionError("the payment was not made")
            [event] = wait_for(
                f"the signed event of {txn} at the receiver",
                lambda: [e for e in receiver.events if e["payment"]["transaction_id"] == txn],
            )
            # A replay of the last minute, through the deployed route, the queue and the index.
            since = datetime.fromtimestamp(time.time() - 60, UTC).isoformat()
            replay = self.call(
                "POST", self.primary, f"/webhook-endpoints/{made.json()['id']}/replay", {"from": since}
            )
            if replay.status_code != 202:
                raise AssertionError(f"replay answered {replay.status_code} {replay.text}")
            again = wait_for(
                f"the replayed event of {txn} at the receiver",
                lambda: [e for e in receiver.events if e["payment"]["transaction_id"] == txn][1:],
            )
            self.call("DELETE", self.primary, f"/webhook-endpoints/{made.json()['id']}")
        finally:
            receiver.close()
        if receiver.unverified:
            raise AssertionError(f"{receiver.unverified} deliveries did not verify")
        if again[0] != event:
            raise AssertionError(
                f"the replay sent {again[0]['id']}, not the event {event['id']} as first sent"
            )
        return f"{event['event']} {event['id']}, verified with the endpoint's secret, and again by a replay"

    def process_twice(self) -> str:
        txn = f"e2e-{uuid.uuid4().hex[:12]}"
        body = {"transaction_id": txn, "customer_id": "cust-e2e", "amount": "12.50", "currency": "USD"}
        first, second = (self.call("POST", self.primary, "/process", body) for _ in range(2))
        read = self.call("GET", self.primary, f"/payments/{txn}")
        codes = (first.status_code, second.status_code, read.status_code)
        amounts = {r.json().get("amount") for r in (first, second, read)}
        if codes != (201, 200, 200) or amounts != {"12.50"}:
            raise AssertionError(f"answers {codes}, amounts {amounts}")
        return "201, 200, read back 12.50"

    def rejected(self, queue_url: str, txn: str) -> str:
        body = {"transaction_id": txn, "customer_id": "cust-e2e", "amount": "999.00", "currency": "USD"}
        response = self.call("POST", self.primary, "/validate", body)
        if response.status_code != 202:
            raise AssertionError(f"/validate of a reused id: {response.status_code} {response.text}")

        def probe() -> dict[str, Any] | None:
            found = self.call("GET", self.primary, f"/payments/{txn}").json()
            return found if found.get("rejections") else None

        found = wait_for(f"the rejection of {txn}", probe)
        event = self.announced(queue_url, txn, event="payment.rejected")
        sqs = self.d.client("sqs", self.primary)
        dead = sqs.get_queue_attributes(
            QueueUrl=self.d.outputs[self.primary]["PaymentDLQUrl"],
            AttributeNames=["ApproximateNumberOfMessages"],
        )["Attributes"]
        if (found["status"], found["amount"]) != ("PROCESSED", "49.90") or dead[
            "ApproximateNumberOfMessages"
        ] != "0":
            raise AssertionError(f"read back {found}, DLQ {dead}")
        return f"{found['rejections'][0]['errors'][0]['field']} refused; {event}; DLQ empty"

    def failover(self) -> str:
        self.failover_at = time.monotonic()
        alarm = f"payment-api-5xx-{self.d.suffix}"
        message = {
            "AlarmName": alarm,
            "AlarmDescription": "API 5XX responses >= 10",
            "AWSAccountId": "000000000000",
            "NewStateValue": "ALARM",
            "NewStateReason": "Threshold Crossed: 1 datapoint [12.0] was greater than or equal to the threshold (10.0).",
            "StateChangeTime": time.strftime("%Y-%m-%dT%H:%M:%S.000+0000", time.gmtime()),
            "Region": "US East (N. Virginia)",
            "AlarmArn": f"arn:aws:cloudwatch:{self.primary}:000000000000:alarm:{alarm}",
            "OldStateValue": "OK",
        }
        # As CloudWatch sends it: no message attributes.
        self.d.client("sns", self.primary).publish(
            TopicArn=self.d.outputs[self.primary]["OpsAlertTopicArn"],
            Subject=f'ALARM: "{alarm}" in US East (N. Virginia)',
            Message=json.dumps(message),
        )
        return ""

    def failed_over(self) -> str:
        self.health_is(503, self.primary)
        self.health_is(200, self.secondary)
        return ""

    def observed(self) -> str:
        """The observer's wiring as deployed: the alarm the stack made in the peer, the canary function."""
        found = []
        for region in self.d.regions:
            peer = next(r for r in self.d.regions if r != region)
            name = ResourceNames(self.d.suffix).canary_alarm(region)
            [alarm] = self.d.client("cloudwatch", peer).describe_alarms(AlarmNames=[name])["MetricAlarms"]
            dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
            if (alarm["MetricName"], dimensions.get("TargetRegion")) != ("CanarySuccess", region):
                raise AssertionError(f"{name} in {peer} watches {alarm['MetricName']} {dimensions}")
            function = ResourceNames(self.d.suffix).canary_function
            self.d.client("lambda", peer).get_function(FunctionName=function)
            found.append(f"{name} in {peer}")
        if self.gaps and self.d.endpoint:
            self.gaps.note(
                "the canary's probes (https://<api>.execute-api.<region>.amazonaws.com): not run here "
                "(the emulator serves APIs on its own endpoint); the drill runs them locally"
            )
            self.gaps.note(
                "Route 53's calculated health check (/health AND the canary alarm): not evaluated here"
            )
        return ", ".join(found)

    def failback(self) -> str:
        command = [sys.executable, "-m", "operations.cli"]
        if self.d.endpoint:
            command += ["--local", "--state-file", str(self.d.write_state())]
        else:
            command += [
                "--suffix",
                self.d.suffix,
                "--primary-region",
                self.primary,
                "--secondary-region",
                self.secondary,
            ]
        # The emulator runs no canary probe (see observed()): its alarm only must not be failing.
        canary = ["--canary-passed-for", "0"] if self.d.endpoint else []
        result = subprocess.run(
            [*command, "failback", self.primary, "--reason", "e2e: failback after the drill", *canary],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        if result.returncode != 0:
            raise AssertionError(
                f"payments-dr failback exited {result.returncode}: {result.stdout}{result.stderr}"
            )
        self.health_is(200, self.primary)
        return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""


def main(argv: list[str] | None = None) -> int:
    """The same journey against a deployment in AWS, with the credentials boto3 finds."""
    parser = argparse.ArgumentParser(prog="python -m e2e.journey", description=__doc__)
    parser.add_argument(
        "--aws", action="store_true", required=True, help="drive the deployment in your AWS account"
    )
    parser.add_argument("--suffix", default=DEFAULT_ENVIRONMENT_SUFFIX)
    parser.add_argument("--primary-region", default=DEFAULT_PRIMARY_REGION)
    parser.add_argument("--secondary-region", default=DEFAULT_SECONDARY_REGION)
    args = parser.parse_args(argv)

    def client(service: str, region: str) -> Any:
        return boto3.client(service, region_name=region)

    stacks = {}
    for region, role in ((args.primary_region, "Primary"), (args.secondary_region, "Secondary")):
        name = f"Payments{args.suffix.capitalize()}{role}"
        [described] = client("cloudformation", region).describe_stacks(StackName=name)["Stacks"]
        stacks[name] = {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}
    deployed = Deployed.from_outputs(stacks, client, ROOT / ".e2e")
    Journey(deployed, Steps()).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
