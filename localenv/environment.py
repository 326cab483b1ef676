"""The whole payment system on one machine: local AWS, both regions' APIs and event handlers.

``python -m localenv`` (``make run``) starts, in order:
1. moto's server on 127.0.0.1 (a free port) in its own process, answering for every region;
2. the payment resources in the primary and the secondary region (``localenv.provision``);
3. global-table replication between the two tables (``localenv.replication``, local only);
4. per region, ``chalice local`` (stage ``local``) on its port and the event runner
   (``localenv.events``) that feeds the SQS and SNS handlers.
Ctrl-C (or SIGTERM) stops everything it started, in reverse order, and prints a summary.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from chalicelib.items import is_payment_record, unscoped
from chalicelib.names import (
    DEFAULT_PRIMARY_REGION,
    DEFAULT_SECONDARY_REGION,
    DEFAULT_TOPOLOGY,
    EnvVar,
    ResourceNames,
    Topology,
    topology_refusal,
)
from chalicelib.schema import CANARY_CLIENT, CANARY_THROTTLE, EVENTUAL_CONSISTENCY, STRONG_CONSISTENCY
from chalicelib.schema import PaymentsTableSchema as Schema
from localenv import moto_fixes
from localenv.events import CANARY_SECONDS_VARIABLE, ORCHESTRATOR_VARIABLE
from localenv.network import port_is_free, wait_for_port
from localenv.provision import RegionResources, local_client, local_credentials, provision_region
from localenv.replication import ReplicaWrites, StreamReplicator
from operations.clients import ClientRegistry
from operations.targets import LOCAL_STATE, Target

# Each region's canary probes the other this often under `make run` (Lambda's schedule: 60 s):
# often enough to watch the observer work, rarely enough to keep canary payments few.
MAKE_RUN_CANARY_SECONDS = 15.0
ROOT = Path(__file__).resolve().parents[1]
RUNTIME = ROOT / "runtime"
CONSISTENCY_MODES = (EVENTUAL_CONSISTENCY, STRONG_CONSISTENCY)
TOPOLOGY_TEXT = {
    Topology.ACTIVE_PASSIVE: "the secondary takes payments after a failover",
    Topology.ACTIVE_ACTIVE: "both regions take payments; a client keeps to the endpoint it lists first",
}
LOCAL_SUFFIX = "local"
PRIMARY_PORT = 8000
SECONDARY_PORT = 8001
STARTUP_TIMEOUT_SECONDS = 60
# The key value of the merchant client `make run` creates (send it as x-api-key); API Gateway takes
# values of 20 characters or more. More clients: `payments-dr --local clients create NAME`.
DEFAULT_LOCAL_API_KEY = "local-payments-key-0001"
LOCAL_MERCHANT = "local-merchant"
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Ask Linux to stop a child when this process dies, however it dies: no orphans."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class PortInUse(RuntimeError):
    """A port the environment needs is taken by another program."""


@dataclass(frozen=True)
class RegionPlan:
    """One region of the local environment and the port its API listens on."""

    region: str
    api_port: int


class LocalEnvironment:
    """Starts and stops the local payment system; usable as a context manager."""

    def __init__(
        self,
        regions: list[RegionPlan],
        *,
        environment_suffix: str = LOCAL_SUFFIX,
        log_dir: Path | None = None,
        api_key: str = DEFAULT_LOCAL_API_KEY,
        state_file: Path | None = None,
        canary_seconds: float = 0.0,
        orchestrators_off: frozenset[str] = frozenset(),
        strong_consistency: bool = False,
        topology: Topology = DEFAULT_TOPOLOGY,
        webhook_time_scale: float = 1.0,
    ) -> None:
        """``log_dir``: write each process's output to a file there instead of the console.

        ``api_key``: the key value of the merchant client it creates (``local-merchant``), which
        payment routes accept in ``x-api-key`` (``/health`` needs none); the canary is a client of
        its own. Clients live as they do deployed: a secret replicated to the peer region, and
        a key and usage plan in each region's API Gateway (:mod:`operations.clients`).
        ``state_file``: where to write the endpoints while running, for ``payments-dr --local``.
        ``canary_seconds``: run each region's canary against its peer at this interval (0: never).
        ``orchestrators_off``: regions whose failover orchestrator never gets ops alerts.
        ``strong_consistency``: the payments table under multi-Region strong consistency's rules
        (see :mod:`localenv.moto_fixes`): each write is in both regions before it is acknowledged.
        ``webhook_time_scale``: webhook retries wait this many times less than their schedule says
        (the webhook drill's compressed hours).
        """
        refusal = topology_refusal(topology, strong_consistency=strong_consistency)
        if refusal:
            raise ValueError(f"{refusal}; run with --consistency strong")
        self.strong_consistency = strong_consistency
        self.consistency = STRONG_CONSISTENCY if strong_consistency else EVENTUAL_CONSISTENCY
        self.topology = topology
        self.webhook_time_scale = webhook_time_scale
        self._events: dict[str, subprocess.Popen[Any]] = {}
        self.canary_seconds = canary_seconds
        self.orchestrators_off = orchestrators_off
        # Faults the local AWS applies (see localenv.moto_fixes), switched by writing this file.
        self._faults = Path(tempfile.mkdtemp(prefix="payments-faults-")) / "faults.json"
        self._denied: set[str] = set()
        self.state_file = state_file
        self.regions = regions
        self.api_key = api_key
        self.environment_suffix = environment_suffix
        self.log_dir = log_dir
        self.endpoint = ""
        self.resources: dict[str, RegionResources] = {}
        self._moto: subprocess.Popen[str] | None = None
        self._processes: list[subprocess.Popen[Any]] = []
        self._apis: dict[str, subprocess.Popen[Any]] = {}
        self._replicators: list[StreamReplicator] = []

    def client(self, service: str, region: str) -> Any:
        """A boto3 client on the local AWS, with an operator's credentials."""
        return local_client(service, self.endpoint, region, operator=True)

    def payment_records(self, region: str, prefix: str = "", client: str = LOCAL_MERCHANT) -> Counter[str]:
        """How many payment records each of ``client``'s transaction ids (starting ``prefix``) has in ``region``."""
        counts: Counter[str] = Counter()
        for page in (
            self.client("dynamodb", region)
            .get_paginator("scan")
            .paginate(TableName=self.resources[region].payments_table, ConsistentRead=True)
        ):
            for item in page["Items"]:
                owner, transaction_id = unscoped(item[Schema.PARTITION_KEY]["S"])
                if owner == client and transaction_id.startswith(prefix) and is_payment_record(item):
                    counts[transaction_id] += 1
        return counts

    def deny_data_plane(self, region: str) -> None:
        """Fault injection: the functions' writes to DynamoDB in ``region`` are denied (AccessDenied).

        Reads still answer, so ``/health`` stays 200 while no payment can be stored: a gray
        failure. Replication and operators (other credentials) are not affected.
        """
        self._denied.add(region)
        self._faults.write_text(json.dumps({"deny_writes": sorted(self._denied)}))

    def restore_data_plane(self, region: str) -> None:
        self._denied.discard(region)
        self._faults.write_text(json.dumps({"deny_writes": sorted(self._denied)}))

    def api_url(self, region: str) -> str:
        port = next(plan.api_port for plan in self.regions if plan.region == region)
        return f"http://127.0.0.1:{port}"

    def start(self) -> Self:
        taken = [plan.api_port for plan in self.regions if not port_is_free(plan.api_port)]
        if taken:
            raise PortInUse(
                f"port {', '.join(map(str, taken))} is already in use; stop what uses it or pick others"
            )
        self._moto = subprocess.Popen(
            [sys.executable, "-m", "localenv.moto_process"],
            cwd=ROOT,
            env={
                **os.environ,
                moto_fixes.FAULTS_VARIABLE: str(self._faults),
                moto_fixes.STRONG_CONSISTENCY_VARIABLE: ",".join(
                    plan.region for plan in self.regions if self.strong_consistency
                ),
            },
            stdout=subprocess.PIPE,
            text=True,
            # Only a prctl call, made before the environment starts any thread of its own.
            preexec_fn=_die_with_parent,  # noqa: PLW1509
        )
        assert self._moto.stdout is not None
        ready = self._moto.stdout.readline().strip()
        if not ready.startswith("listening on "):
            raise RuntimeError(f"the local AWS did not start: {ready!r}")
        self.endpoint = ready.removeprefix("listening on ")
        print(f"local AWS (moto) on {self.endpoint}", flush=True)
        regions = [plan.region for plan in self.regions]
        for plan in self.regions:
            peer = next((r for r in regions if r != plan.region), "")
            self.resources[plan.region] = provision_region(
                self.endpoint, plan.region, self.environment_suffix, peer_region=peer
            )
        self._create_clients()
        self._start_replication()
        for plan in self.regions:
            self._start_region(plan)
        for plan in self.regions:
            wait_for_port(plan.api_port, STARTUP_TIMEOUT_SECONDS, self._apis[plan.region])
            self._read_keys(plan.region)
            print(f"[{plan.region}] API on {self.api_url(plan.region)}", flush=True)
        self._write_state()
        return self

    def target(self) -> Target:
        """This environment as ``payments-dr`` acts on it: both regions, as an operator."""
        return Target(
            environment_suffix=self.environment_suffix,
            primary_region=self.regions[0].region,
            secondary_region=self.regions[-1].region,
            endpoint_url=self.endpoint,
            api_urls={plan.region: self.api_url(plan.region) for plan in self.regions},
            api_key=self.api_key,
            credentials=local_credentials(operator=True),
        )

    def state(self) -> dict[str, Any]:
        """Where everything runs: read by ``payments-dr --local`` and ``chalice local --stage local``."""
        return {
            **self.target().describe(),
            "consistency": self.consistency,
            "topology": str(self.topology),
            # Each region's function environment, so another API process can serve it as well.
            "functions": {plan.region: self._function_environment(plan.region) for plan in self.regions},
        }

    def _write_state(self) -> None:
        if self.state_file is None:
            return
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(self.state(), indent=2))

    def clients(self) -> ClientRegistry:
        """The API clients of this environment, as ``payments-dr --local clients`` manages them."""
        regions = tuple(plan.region for plan in self.regions)
        return ClientRegistry(
            names=ResourceNames(self.environment_suffix),
            regions=(regions[0], regions[-1]),
            client=self.client,
        )

    def _create_clients(self) -> None:
        if len(self.regions) < 2:
            return
        registry = self.clients()
        for report in (
            registry.create(CANARY_CLIENT, throttle=CANARY_THROTTLE, for_the_stacks=True),
            registry.create(LOCAL_MERCHANT, value=self.api_key),
        ):
            if not report.ok:
                raise RuntimeError(report.render())

    def _start_replication(self) -> None:
        if len(self.regions) < 2:
            return
        resources = next(iter(self.resources.values()))
        first, second = (plan.region for plan in self.regions[:2])
        # Under strong consistency the local AWS itself copies each payments-table write before
        # acknowledging it; the Idempotency-Key and webhook endpoint tables stay eventually consistent.
        tables = (
            *(() if self.strong_consistency else (resources.payments_table,)),
            resources.idempotency_table,
            resources.webhook_endpoints_table,
        )
        ledger = ReplicaWrites()
        for table, (source, target) in (
            (t, pair) for t in tables for pair in ((first, second), (second, first))
        ):
            replicator = StreamReplicator(
                table=table,
                source=self.client("dynamodb", source),
                source_streams=self.client("dynamodbstreams", source),
                target=self.client("dynamodb", target),
                source_region=source,
                target_region=target,
                ledger=ledger,
            )
            replicator.start()
            self._replicators.append(replicator)

    def _function_environment(self, region: str) -> dict[str, str]:
        """What a region's functions are given: where its resources are, and the key to check."""
        return {
            **self.resources[region].function_environment(self.endpoint),
            EnvVar.LOCAL_API_GATEWAY: "1",
            EnvVar.LOCAL_STAGE: "1",
            EnvVar.PAYMENTS_CONSISTENCY: self.consistency,
            EnvVar.LOCAL_TIME_SCALE: str(self.webhook_time_scale),
        }

    def _region_env(self, plan: RegionPlan) -> dict[str, str]:
        peer = self.resources[plan.region].peer_region
        canary = (
            {
                CANARY_SECONDS_VARIABLE: str(self.canary_seconds),
                EnvVar.PEER_API_URL: self.api_url(peer),
            }
            if self.canary_seconds and peer
            else {}
        )
        return {
            **os.environ,
            **self._function_environment(plan.region),
            **canary,
            ORCHESTRATOR_VARIABLE: "off" if plan.region in self.orchestrators_off else "on",
            "PYTHONUNBUFFERED": "1",
        }

    def _start_region(self, plan: RegionPlan) -> None:
        self._apis[plan.region] = self._spawn(plan, "api")
        self._processes.append(self._apis[plan.region])
        self._events[plan.region] = self._spawn(plan, "events")
        self._processes.append(self._events[plan.region])

    def _spawn(self, plan: RegionPlan, role: str, append: bool = False) -> subprocess.Popen[Any]:
        if role == "api":
            command = [
                sys.executable,
                "-m",
                "localenv.chalice_local",
                "local",
                "--host",
                "127.0.0.1",
                "--port",
                str(plan.api_port),
                "--stage",
                "local",
                "--no-autoreload",
            ]
            cwd = RUNTIME
        else:
            command, cwd = [sys.executable, "-m", "localenv.events"], ROOT
        output = self._output_file(f"{plan.region}-{role}.log", append)
        return subprocess.Popen(
            command,
            cwd=cwd,
            env=self._region_env(plan),
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            # Only a prctl call, made before the environment starts any thread of its own.
            preexec_fn=_die_with_parent,  # noqa: PLW1509
        )

    def api_pid(self, region: str) -> int:
        """The process id of ``region``'s API server."""
        return self._apis[region].pid

    def stop_api(self, region: str) -> None:
        """Fault injection: the region's API stops answering (its process is killed)."""
        api = self._apis[region]
        api.kill()
        api.wait()

    def stop_events(self, region: str) -> None:
        """Fault injection: the region's event handlers stop (queues and streams wait for them).

        Stopped between two polls, as Lambda's pollers of a lost region simply stop: what they had
        not taken waits in the queue, nothing taken is left half done.
        """
        events = self._events[region]
        events.terminate()
        events.wait(timeout=STARTUP_TIMEOUT_SECONDS)

    def start_events(self, region: str) -> None:
        """Bring a region's stopped event handlers back."""
        plan = next(p for p in self.regions if p.region == region)
        old = self._events[region]
        self._events[region] = self._spawn(plan, "events", append=True)
        self._processes[self._processes.index(old)] = self._events[region]

    def start_api(self, region: str) -> None:
        """Bring a stopped API back on its port."""
        plan = next(p for p in self.regions if p.region == region)
        old = self._apis[region]
        self._apis[region] = self._spawn(plan, "api", append=True)
        self._processes[self._processes.index(old)] = self._apis[region]
        wait_for_port(plan.api_port, STARTUP_TIMEOUT_SECONDS, self._apis[region])
        self._read_keys(region)

    def _read_keys(self, region: str) -> None:
        """Have ``region``'s API read its clients' keys now, as API Gateway holds them before any request.

        Its key ring reads on first use; without this, a local AWS that dies before a region's first
        request would leave that API with no key to accept (API Gateway keeps its keys).
        """
        request = urllib.request.Request(
            self.api_url(region) + "/payments/__key-ring", headers={"x-api-key": self.api_key}
        )
        try:
            urllib.request.urlopen(request, timeout=STARTUP_TIMEOUT_SECONDS).close()
        except urllib.error.HTTPError:
            pass  # 404 (no such payment) once the key was accepted

    def replication_lag_ms(self, table: str) -> list[float]:
        """Every replication lag measured so far for ``table``, both directions, in arrival order."""
        return [lag for r in self._replicators if r.table == table for lag in list(r.stats.lag_ms)]

    def stop_local_aws(self) -> None:
        """Fault injection: the local AWS dies (its process is killed); nothing else is told."""
        if self._moto is not None:
            self._moto.kill()
            self._moto.wait()

    def pause_replication_from(self, region: str) -> None:
        """Fault injection: nothing written in ``region`` reaches the other region any more."""
        for replicator in self._replicators:
            if replicator.source_region == region:
                replicator.pause()

    def resume_replication_from(self, region: str) -> None:
        for replicator in self._replicators:
            if replicator.source_region == region:
                replicator.resume()

    def _output_file(self, name: str, append: bool = False) -> Any:
        if self.log_dir is None:
            return None
        self.log_dir.mkdir(parents=True, exist_ok=True)
        return (self.log_dir / name).open("a" if append else "w")

    def log_of(self, region: str, role: str) -> str:
        """What the ``role`` ("api" or "events") process of ``region`` has written so far."""
        assert self.log_dir is not None, "log_dir was not set"
        return (self.log_dir / f"{region}-{role}.log").read_text()

    def all_running(self) -> bool:
        """Whether every process the environment started is still alive."""
        return all(process.poll() is None for process in self._processes)

    def stop(self) -> None:
        if self.state_file is not None:
            self.state_file.unlink(missing_ok=True)
        for process in self._processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self._processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._processes.clear()
        for replicator in self._replicators:
            replicator.stop()
            print(f"[replication {replicator.label}] {replicator.stats.summary()}", flush=True)
        if self._moto is not None and self._moto.poll() is None:
            self._moto.terminate()
            try:
                self._moto.wait(timeout=10)
            except subprocess.TimeoutExpired:  # long-polling requests can hold its server open
                self._moto.kill()
                self._moto.wait()
            self._moto = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def add_consistency_argument(parser: argparse.ArgumentParser) -> None:
    """``--consistency``: the payments table's mode, shared by ``make run`` and the drill."""
    parser.add_argument(
        "--consistency",
        choices=CONSISTENCY_MODES,
        default="eventual",
        help="the payments table as a default global table (eventual, replicated within about a second) "
        "or under multi-Region strong consistency's rules (strong: transactions and TTL refused, each "
        "write in both regions before it is acknowledged); default %(default)s",
    )


def add_topology_argument(parser: argparse.ArgumentParser) -> None:
    """``--topology``: which regions take payments, shared by ``make run`` and the drill."""
    parser.add_argument(
        "--topology",
        type=Topology,
        choices=list(Topology),
        default=DEFAULT_TOPOLOGY,
        help="active-passive: the secondary takes payments only after a failover; active-active: both "
        "regions take payments (needs --consistency strong, as the stacks need a witness); default %(default)s",
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m localenv",
        description="Run the payment service locally: both regions, APIs and event handlers.",
    )
    parser.add_argument("--primary-region", default=DEFAULT_PRIMARY_REGION)
    parser.add_argument("--secondary-region", default=DEFAULT_SECONDARY_REGION)
    parser.add_argument("--port", type=int, default=PRIMARY_PORT, help="primary API port (secondary: +1)")
    add_consistency_argument(parser)
    add_topology_argument(parser)
    args = parser.parse_args(argv)
    refusal = topology_refusal(args.topology, strong_consistency=args.consistency == "strong")
    if refusal:
        parser.error(f"{refusal}; add --consistency strong (CONSISTENCY=strong)")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run until Ctrl-C."""
    args = parse_args(argv)
    environment = LocalEnvironment(
        [RegionPlan(args.primary_region, args.port), RegionPlan(args.secondary_region, args.port + 1)],
        state_file=LOCAL_STATE,
        canary_seconds=MAKE_RUN_CANARY_SECONDS,
        strong_consistency=args.consistency == "strong",
        topology=args.topology,
    )
    stopping = False

    def request_stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        environment.start()
        print(f"payment routes need the header  x-api-key: {environment.api_key}", flush=True)
        print(f"payments table consistency: {args.consistency}", flush=True)
        print(f"topology: {args.topology} ({TOPOLOGY_TEXT[args.topology]})", flush=True)
        print("ready: Ctrl-C stops everything", flush=True)
        while not stopping and environment.all_running():
            time.sleep(0.2)
    except PortInUse as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        environment.stop()
    return 0
