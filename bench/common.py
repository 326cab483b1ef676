"""What the benchmarks share: a local AWS in this process and the statistics they report."""

from __future__ import annotations

import logging
import os
import statistics
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from moto.server import ThreadedMotoServer

from bench.cold_start_child import BENCH_API_KEY_ID, BENCH_CLIENT
from localenv import moto_fixes
from localenv.provision import RegionResources, local_client, provision_region
from operations.clients import directory_entry

ROOT = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
SUFFIX = "bench"


@dataclass(frozen=True)
class LocalAws:
    """A moto server on loopback with one region's payment resources."""

    endpoint: str
    resources: RegionResources

    def environment(self) -> dict[str, str]:
        """Environment variables that point the payment functions at it."""
        return self.resources.function_environment(self.endpoint)


@contextmanager
def local_aws() -> Iterator[LocalAws]:
    """Start moto on a free loopback port, provision the resources, and point os.environ at them."""
    moto_fixes.install()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # moto keeps its state per process, across servers: start every benchmark from nothing.
    urllib.request.urlopen(
        urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=10
    ).close()
    aws = LocalAws(endpoint, provision_region(endpoint, REGION, SUFFIX))
    local_client("dynamodb", endpoint, REGION).put_item(
        TableName=aws.resources.clients_table, Item=directory_entry(BENCH_API_KEY_ID, BENCH_CLIENT)
    )
    saved = dict(os.environ)
    os.environ.update(aws.environment())
    try:
        yield aws
    finally:
        os.environ.clear()
        os.environ.update(saved)
        server.stop()


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile of ``values`` (nearest rank, halves up; 0 when there are none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(len(ordered) * fraction + 0.5) - 1))]


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def unique_id(prefix: str) -> str:
    """A transaction id no run repeats; letters only, so it never looks like a card number."""
    import random
    import string

    return f"{prefix}-{''.join(random.choices(string.ascii_lowercase, k=16))}"
