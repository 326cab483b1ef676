"""Two regions of the payment app on one local AWS, with faults that strike where a schedule says.

Each region is the Chalice app as Lambda calls it, with that region's services; merchants reach
them through :class:`RegionGateway`, a ``requests`` transport that plays API Gateway and the
network: it refuses a lost region's connections, answers a merchant's throttle with 429, turns a
function that died into API Gateway's 502, and can lose an answer on the wire. Inside a request,
:class:`FunctionFaults` (botocore hooks on the functions' SDK session) kills the function or times
out a call at the point the schedule names. Each region's notifier reads its table's stream as
Lambda would (retrying from the first failed record, then giving up, as its on-failure destination
would hold the rest); replication between the tables runs as ``make run``'s does.

The gateway runs one request at a time (the app's services are one per process): merchants run
concurrently between their requests, each in its own thread, and every fault lands inside one.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from botocore.exceptions import ReadTimeoutError
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.exceptions import MaxRetryError, NewConnectionError

from chalicelib import local_api_keys, outbox, sdk
from chalicelib.items import announced_from_attributes
from chalicelib.names import EnvVar, ResourceNames
from chalicelib.payments import Announced, PaymentRecord
from chalicelib.regions import RegionFlag
from chalicelib.schema import PaymentsTableSchema as Schema
from chalicelib.services import Services, build_aws_services, use_services
from chalicelib.settings import Settings
from chaos.schedule import RegionFault, RequestFault, Schedule
from localenv.events import LocalContext
from localenv.provision import RegionResources, local_client, local_credentials, provision_region
from localenv.replication import ReplicaWrites, StreamReplicator
from localenv.streams import TableStream, lambda_stream_event
from operations.clients import ClientRegistry
from operations.reannounce import announced_items
from operations.targets import Target

REGIONS = ("us-east-1", "us-east-2")
SUFFIX = "chaos"
# API Gateway's answer when the function behind it died or timed out.
GATEWAY_FAILURE = (502, b'{"message": "Internal server error"}')
THROTTLED = (429, b'{"message": "Too Many Requests"}')
# How long Route 53 takes to move a domain off a region that is lost or drained (scaled down, as
# every wait of the checker is: the properties hold whatever the times, the runs stay short).
DNS_MOVE_SECONDS = 0.6
# What Lambda's stream event source does with a batch that keeps failing: retries, then gives up.
NOTIFIER_RETRIES = 3
FLAG_CACHE_SECONDS = 0.1


class FunctionKilled(BaseException):
    """The function dies where it stands: nothing after this point of the invocation runs."""


@dataclass
class FunctionFaults:
    """Botocore hooks that strike the request now running, at the point its fault names."""

    current: RequestFault | None = None
    struck: int = 0

    def install(self, session: Any) -> None:
        session.register("before-parameter-build.dynamodb.PutItem", self._note)
        session.register("before-call.dynamodb.PutItem", self._before)
        session.register("after-call.dynamodb.PutItem", self._after)

    @staticmethod
    def _note(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        item = params.get("Item", {})
        is_payment = Schema.SORT_KEY in item and "transaction_id" in item
        context["chaos.item"] = int(item[Schema.SORT_KEY]["N"]) if is_payment else None

    def _before(self, context: dict[str, Any], **_: Any) -> None:
        if (
            self.current is RequestFault.HANGS_PAST_TIMEOUT
            and context.get("chaos.item") == Schema.CLAIM_SORT_KEY
        ):
            self.struck += 1
            raise ReadTimeoutError(endpoint_url="dynamodb (the claim)")

    def _after(self, context: dict[str, Any], http_response: Any, **_: Any) -> None:
        sort_key = context.get("chaos.item")
        if sort_key is None:
            return
        claim = sort_key == Schema.CLAIM_SORT_KEY
        if claim and self.current is RequestFault.FAILS_AFTER_WRITE:
            # Written now or by an earlier attempt (the condition failed): the answer times out either way.
            self.struck += 1
            raise ReadTimeoutError(endpoint_url="dynamodb (the claim, written)")
        if http_response.status_code != 200:
            return
        if claim and self.current is RequestFault.KILLED_AFTER_CLAIM:
            self.struck += 1
            raise FunctionKilled
        if not claim and self.current is RequestFault.KILLED_AFTER_WRITE:
            self.struck += 1
            raise FunctionKilled


@dataclass
class Announcement:
    """One publication on a region's transactions topic."""

    region: int
    event_id: str
    client: str | None
    transaction_id: str | None


class RecordingTopic:
    """A region's transactions topic: keeps each publication; fails some while its outage lasts."""

    def __init__(self, world: World, region: int) -> None:
        self._world = world
        self._region = region

    def announce(self, items: Any) -> set[int]:
        failed: set[int] = set()
        for index, item in enumerate(items):
            if self._world.notifier_fails(self._region):
                failed.add(index)
                continue
            body = outbox.notification_body(item)
            self._world.announcements.append(
                Announcement(self._region, body["id"], item.client, item.transaction_id)
            )
        return failed


@dataclass
class Attempt:
    """One HTTP request a merchant's client made, as the gateway saw it."""

    at: float
    key: str | None
    region: int | None
    status: int | str


@dataclass
class History:
    """What one schedule did: faults struck, attempts, announcements (the world's), and when."""

    started: float = 0.0
    started_ms: int = 0
    attempts: list[Attempt] = field(default_factory=list)
    struck: int = 0


class RegionGateway(BaseAdapter):
    """API Gateway and the network in front of both regions, for ``requests``: hosts ``region-0``,
    ``region-1`` and ``domain`` (which Route 53's failover record resolves)."""

    def __init__(self, world: World) -> None:
        super().__init__()
        self._world = world

    def send(self, request: Any, **_: Any) -> requests.Response:  # type: ignore[override]
        world = self._world
        host = urlsplit(request.url).hostname or ""
        region = world.resolve(host)
        path = urlsplit(request.url).path or "/"
        key = request.headers.get("Idempotency-Key")
        if region is None or world.is_lost(region):
            world.note(key, region, "refused")
            refused = NewConnectionError(None, f"{host}: connection refused")  # type: ignore[arg-type]
            raise requests.ConnectionError(MaxRetryError(None, request.url, refused), request=request)  # type: ignore[arg-type]
        fault = world.fault_for(key) if request.method == "POST" else None
        if fault is RequestFault.THROTTLED:
            world.note(key, region, THROTTLED[0])
            return _response(request, *THROTTLED, {})
        status, body, headers = world.invoke(
            region, request.method, path, dict(request.headers), request.body, fault
        )
        world.note(key, region, status)
        if fault is RequestFault.ANSWER_LOST:
            raise requests.ConnectionError("Connection aborted: the answer was lost", request=request)
        if fault is RequestFault.ANSWER_CUT_SHORT:
            raise requests.exceptions.ChunkedEncodingError("the body was cut short", request=request)
        return _response(request, status, body, headers)

    def close(self) -> None:
        return None


def _response(request: Any, status: int, body: bytes, headers: dict[str, str]) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.headers = CaseInsensitiveDict({"Content-Type": "application/json", **headers})
    response._content = body
    response.url = request.url
    response.request = request
    return response


class World:
    """Both regions, their gateway, notifiers and replication: built once, reused by each schedule."""

    def __init__(self, endpoint_url: str, *, strong: bool = False) -> None:
        self.endpoint_url = endpoint_url
        self.strong = strong
        self.names = ResourceNames(SUFFIX)
        self.resources: list[RegionResources] = []
        self.services: list[Services] = []
        self.faults = FunctionFaults()
        self.announcements: list[Announcement] = []
        self.history = History()
        self.schedule: Schedule | None = None
        self.merchant_keys: dict[str, str] = {}
        self._lock = threading.Lock()
        self._attempts_of: dict[str, int] = {}
        self._index_of: dict[str, int] = {}
        self._replicators: list[StreamReplicator] = []
        self._notifiers: list[NotifierRunner] = []
        self._stopped = threading.Event()
        self._app: Any = None
        self._http: Any = None
        self._drained: set[int] = set()
        self._notifier_dice = random.Random(0)

    # ------------------------------------------------------------------ set-up, once per world
    def start(self, merchants: int) -> None:
        """Provision both regions, the merchants' keys, replication and the notifiers."""
        from chalice.test import Client

        from localenv import moto_fixes

        moto_fixes.use_strong_consistency(list(REGIONS) if self.strong else [])
        # A fresh local AWS: streams read from their start, so nothing an earlier world left in
        # them is replicated or announced again.
        requests.post(f"{self.endpoint_url}/moto-api/reset", timeout=10).raise_for_status()
        self._stopped = threading.Event()
        self.resources, self.services, self._replicators, self._notifiers = [], [], [], []
        self.merchant_keys = {}
        for index, region in enumerate(REGIONS):
            self.resources.append(
                provision_region(self.endpoint_url, region, SUFFIX, peer_region=REGIONS[1 - index])
            )
        registry = ClientRegistry(
            names=self.names,
            regions=REGIONS,
            client=lambda service, region: local_client(service, self.endpoint_url, region, operator=True),
        )
        for n in range(merchants):
            name, value = f"merchant-{n}", f"chaos-merchant-key-{n:04d}-00000000"
            report = registry.create(name, value=value)
            assert report.ok, report.render()
            self.merchant_keys[name] = value
        local_api_keys.key_ring.cache_clear()
        session = sdk.sdk_session()
        self.faults.install(session)
        sdk.use_session(session)
        for index, resources in enumerate(self.resources):
            environment = {**resources.function_environment(self.endpoint_url), EnvVar.LOCAL_API_GATEWAY: "1"}
            environment[EnvVar.FLAG_CACHE_SECONDS] = str(FLAG_CACHE_SECONDS)
            services = build_aws_services(Settings.from_environment(environment))
            self.services.append(services._replace(notifications=RecordingTopic(self, index)))
        import app as api_function

        self._app = api_function
        self._http = Client(api_function.app).http
        ledger = ReplicaWrites()
        tables = (
            (self.names.idempotency_table,)
            if self.strong
            else (self.names.payments_table, self.names.idempotency_table)
        )
        for table in tables:
            for source, target in ((0, 1), (1, 0)):
                replicator = StreamReplicator(
                    table=table,
                    source=self.client("dynamodb", source),
                    source_streams=self.client("dynamodbstreams", source),
                    target=self.client("dynamodb", target),
                    source_region=REGIONS[source],
                    target_region=REGIONS[target],
                    ledger=ledger,
                )
                replicator.start()
                self._replicators.append(replicator)
        self._warm_up()
        for index in range(2):
            runner = NotifierRunner(self, index)
            runner.start()
            self._notifiers.append(runner)

    def _warm_up(self) -> None:
        """Each region's first calls make its clients: done before any history, so faults timed
        from a history's start meet warm functions, as in every schedule after the first."""
        key = next(iter(self.merchant_keys.values()))
        for region in (0, 1):
            for path in ("/health", "/payments/warm-up"):
                self.invoke(region, "GET", path, {"x-api-key": key}, None, None)

    def stop(self) -> None:
        self._stopped.set()
        for runner in self._notifiers:
            runner.join()
        for replicator in self._replicators:
            replicator.stop()
        use_services(None)
        sdk.use_session(None)

    def client(self, service: str, region: int) -> Any:
        return local_client(service, self.endpoint_url, REGIONS[region], operator=True)

    def target(self) -> Target:
        """This world as the operator's tools see a deployment."""
        return Target(
            environment_suffix=SUFFIX,
            primary_region=REGIONS[0],
            secondary_region=REGIONS[1],
            endpoint_url=self.endpoint_url,
            credentials=local_credentials(operator=True),
        )

    # ------------------------------------------------------------------ one schedule
    def begin(self, schedule: Schedule) -> None:
        """Both regions in service and nothing struck: the start of ``schedule``'s history."""
        for index in range(2):
            self._set_flag(index, RegionFlag(in_service=True))
        self.schedule = schedule
        self.history = History(started=time.monotonic(), started_ms=time.time_ns() // 1_000_000)
        self.announcements.clear()
        self._attempts_of.clear()
        self._index_of.clear()
        self._drained = set()
        self._notifier_dice = random.Random(schedule.seed)

    def index_payment(self, key: str, index: int) -> None:
        """``key`` is the Idempotency-Key of the schedule's ``index``-th payment."""
        with self._lock:
            self._index_of[key] = index

    def elapsed(self) -> float:
        return time.monotonic() - self.history.started

    def region_fault(self, region: int, fault: RegionFault) -> float | None:
        """Seconds into the history when ``fault`` struck ``region`` (None: it did not, yet)."""
        struck = self.schedule.region if self.schedule else None
        if (
            struck is None
            or struck.region != region
            or struck.fault is not fault
            or self.elapsed() < struck.after
        ):
            return None
        return struck.after

    def is_lost(self, region: int) -> bool:
        return self.region_fault(region, RegionFault.LOST) is not None

    def drain_if_due(self) -> None:
        """Apply the schedule's drain once its moment has come (an operator's switchover)."""
        for region in (0, 1):
            if region not in self._drained and self.region_fault(region, RegionFault.DRAINED) is not None:
                self._drained.add(region)
                self._set_flag(region, RegionFlag(in_service=True, reason="switchover", accepting=False))

    def out_since(self, region: int) -> float | None:
        """When ``region`` was lost or drained, in seconds into the history."""
        for fault in RegionFault:
            at = self.region_fault(region, fault)
            if at is not None:
                return at
        return None

    def resolve(self, host: str) -> int | None:
        """Which region a host reaches: its own, or for the domain, where Route 53 points."""
        if host.startswith("region-"):
            return int(host.removeprefix("region-").split(".")[0])
        if host.startswith("domain"):
            out = self.out_since(0)
            return 1 if out is not None and self.elapsed() >= out + DNS_MOVE_SECONDS else 0
        return None

    def fault_for(self, key: str | None) -> RequestFault | None:
        """The fault that strikes this attempt of the payment under ``key``, if any."""
        if key is None or self.schedule is None:
            return None
        with self._lock:
            index = self._index_of.get(key)
            attempt = self._attempts_of.get(key, 0)
            self._attempts_of[key] = attempt + 1
        struck = None if index is None else self.schedule.faults_of(index)
        if struck is None or attempt >= struck.attempts:
            return None
        self.history.struck += 1
        return struck.fault

    def note(self, key: str | None, region: int | None, status: int | str) -> None:
        with self._lock:
            self.history.attempts.append(Attempt(self.elapsed(), key, region, status))

    def notifier_fails(self, region: int) -> bool:
        outage = self.schedule.notifier if self.schedule else None
        if outage is None or outage.region != region or not outage.start <= self.elapsed() < outage.end:
            return False
        return self._notifier_dice.random() < outage.rate

    def invoke(
        self,
        region: int,
        method: str,
        path: str,
        headers: dict[str, str],
        body: Any,
        fault: RequestFault | None,
    ) -> tuple[int, bytes, dict[str, str]]:
        """Run one request in ``region``'s function, with ``fault`` striking inside it."""
        self.drain_if_due()
        with self.running(region):
            self.faults.current = fault
            try:
                payload = body.encode() if isinstance(body, str) else body or b""
                answer = self._http.request(method, path, headers=headers, body=payload)
            except FunctionKilled:
                return (*GATEWAY_FAILURE, {})
            finally:
                self.faults.current = None
        return answer.status_code, answer.body, dict(answer.headers)

    @contextlib.contextmanager
    def running(self, region: int) -> Iterator[Services]:
        """``region``'s function, alone in the process while it runs."""
        with self._lock_function:
            use_services(self.services[region])
            yield self.services[region]

    _lock_function = threading.Lock()

    def _set_flag(self, region: int, flag: RegionFlag) -> None:
        self.client("ssm", region).put_parameter(
            Name=self.names.in_service_parameter, Value=flag.to_text(), Type="String", Overwrite=True
        )
        self.services[region].flag_cache.clear()
        self.services[region].health_cache.clear()

    # ------------------------------------------------------------------ the end of a history
    def settle(self, timeout: float = 10.0) -> None:
        """Wait for replication and the live notifiers to catch up."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(runner.idle() for runner in self._notifiers) and self._tables_agree():
                return
            time.sleep(0.1)

    def clear(self) -> None:
        """Delete what the history stored, in both regions, so the next one starts from empty tables."""
        for region in (0, 1):
            dynamodb = self.client("dynamodb", region)
            for table, keys in (
                (self.names.payments_table, (Schema.PARTITION_KEY, Schema.SORT_KEY)),
                (self.names.idempotency_table, ("id",)),
            ):
                for page in dynamodb.get_paginator("scan").paginate(
                    TableName=table,
                    ProjectionExpression=", ".join(f"#k{n}" for n in range(len(keys))),
                    ExpressionAttributeNames={f"#k{n}": key for n, key in enumerate(keys)},
                ):
                    found = page.get("Items", [])
                    for start in range(0, len(found), 25):
                        dynamodb.batch_write_item(
                            RequestItems={
                                table: [
                                    {"DeleteRequest": {"Key": item}} for item in found[start : start + 25]
                                ]
                            }
                        )

    def _tables_agree(self) -> bool:
        stored = [self.claims(region) for region in (0, 1)]
        return stored[0].keys() == stored[1].keys()

    def reannounce(self) -> int:
        """What the runbook says after a notifier gave up or a region was lost: ``payments-dr
        reannounce`` over the history, from a region still in service, with the same event ids."""
        survivor = next(r for r in (1, 0) if not self.is_lost(r))
        until_ms = time.time_ns() // 1_000_000 + 1
        items = list(
            announced_items(
                self.target(), REGIONS[survivor], since_ms=self.history.started_ms, until_ms=until_ms
            )
        )
        RecordingTopic(self, survivor).announce(items)
        return len(items)

    def claims(self, region: int) -> dict[tuple[str, str], PaymentRecord]:
        """Every payment ``region``'s table holds for this history, by (client, transaction id)."""
        found: dict[tuple[str, str], PaymentRecord] = {}
        for item in self.items(region):
            announced = announced_from_attributes(item)
            if (
                isinstance(announced, PaymentRecord)
                and int(item[Schema.SORT_KEY]["N"]) == Schema.CLAIM_SORT_KEY
            ):
                found[(announced.client, announced.transaction_id)] = announced
        return found

    def records(self, region: int) -> list[tuple[str, str]]:
        """(client, transaction id) of every record item (what a customer's history lists)."""
        listed = []
        for item in self.items(region):
            if int(item[Schema.SORT_KEY]["N"]) > 0 and "customer_id" in item:
                client, _, transaction = item[Schema.PARTITION_KEY]["S"].partition("#")
                listed.append((client, transaction))
        return listed

    def items(self, region: int) -> Iterator[dict[str, Any]]:
        pages = self.client("dynamodb", region).get_paginator("scan")
        prefix = self.schedule_prefix()
        for page in pages.paginate(TableName=self.names.payments_table, ConsistentRead=True):
            for item in page.get("Items", []):
                if f"#{prefix}" in item[Schema.PARTITION_KEY]["S"]:
                    yield item

    def schedule_prefix(self) -> str:
        return f"s{self.schedule.seed}-" if self.schedule else "s-"


class NotifierRunner:
    """One region's notifier, fed from its table's stream as Lambda's event source feeds it."""

    def __init__(self, world: World, region: int) -> None:
        self._world = world
        self._region = region
        resources = world.resources[region]
        self._stream = TableStream(
            table=resources.payments_table,
            dynamodb=world.client("dynamodb", region),
            streams=world.client("dynamodbstreams", region),
        )
        self._pending: list[dict[str, Any]] = []
        self._failures = 0
        self._thread = threading.Thread(target=self._run, name=f"notifier {region}", daemon=True)

    def start(self) -> None:
        self._stream.poll()  # what an earlier run stored is not this one's to announce
        self._thread.start()

    def join(self) -> None:
        self._thread.join(timeout=5)

    def idle(self) -> bool:
        return not self._pending or self._world.is_lost(self._region)

    def _run(self) -> None:
        while not self._world._stopped.wait(0.05):
            if self._world.is_lost(self._region):
                continue  # a lost region's notifier runs no more
            try:
                self._deliver()
            except Exception as error:  # noqa: BLE001 - a local hiccup: the next poll retries
                print(f"[chaos notifier {self._region}] {type(error).__name__}: {error}", flush=True)

    def _deliver(self) -> None:
        fresh = self._stream.poll()
        if fresh:
            self._pending.extend(
                lambda_stream_event(fresh, self._stream.stream_arn, REGIONS[self._region])["Records"]
            )
        if not self._pending:
            return
        batch = self._pending[:100]
        with self._world.running(self._region):
            response = self._world._app.announce_processed_payments(
                {"Records": batch}, LocalContext("notifier")
            )
        failed = [entry["itemIdentifier"] for entry in (response or {}).get("batchItemFailures", [])]
        positions = [record["dynamodb"]["SequenceNumber"] for record in batch]
        done = positions.index(min(failed, key=positions.index)) if failed else len(batch)
        self._failures = self._failures + 1 if failed else 0
        if failed and self._failures > NOTIFIER_RETRIES:
            done, self._failures = len(batch), 0  # given up: the positions go to the notification DLQ
        self._pending = self._pending[done:]


def announced(world: World) -> dict[tuple[str | None, str | None], set[str]]:
    """Each payment's event ids, over every publication of the history."""
    ids: dict[tuple[str | None, str | None], set[str]] = {}
    for announcement in world.announcements:
        ids.setdefault((announcement.client, announcement.transaction_id), set()).add(announcement.event_id)
    return ids


__all__ = ["Announced", "World", "announced"]
