"""Parameter Store reads of the in-service flag by busy API containers, against the account's quota.

Each warm API container reads its region's flag before taking a payment, at most once per
``FLAG_CACHE_SECONDS``, and ``/health`` reads it at most once per ``HEALTH_CACHE_SECONDS`` for the
Route 53 checkers. Parameter Store's default throughput is 40 GetParameter calls a second per
account and region; past it, calls are throttled (botocore retries them inside the request,
and a read that still fails keeps the last flag read).

Measured, not computed: ``containers`` copies of the real services each run the real
``refuse_unless_accepting`` on a simulated clock (a payment every half second each, after a cold
start spread over the first minute) for ten simulated minutes, over a counting flag store with a
40-a-second token bucket. Printed for 1, 100 and 1000 containers: reads a second (mean, and the
busiest second) and the share throttled, for the deployed cache time and for the 5 s it was.

python -m bench.flag_reads
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from chalicelib import payments_api
from chalicelib.errors import DependencyUnavailable
from chalicelib.failover_numbers import FLAG_CACHE_SECONDS
from chalicelib.regions import Cached, RegionFlag

PARAMETER_STORE_TPS = 40
BASELINE_CACHE_SECONDS = 5.0
CONTAINERS = (1, 100, 1000)
SIMULATED_SECONDS = 600
REQUEST_INTERVAL_SECONDS = 0.5
COLD_START_SPREAD_SECONDS = 60.0


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _ParameterStore:
    """Counts GetParameter calls per simulated second; refuses those over the quota (throttled)."""

    def __init__(self, clock: _Clock) -> None:
        self._clock = clock
        self.reads: Counter[int] = Counter()
        self.throttled = 0

    def flag(self) -> RegionFlag:
        second = int(self._clock())
        self.reads[second] += 1
        if self.reads[second] > PARAMETER_STORE_TPS:
            self.throttled += 1
            raise DependencyUnavailable("in-service flag")
        return RegionFlag(in_service=True)


class _Probes:
    def __init__(self, store: _ParameterStore) -> None:
        self.flag = store.flag


class _Services:
    """The two parts of the services ``refuse_unless_accepting`` uses."""

    def __init__(self, store: _ParameterStore, cache: Cached[RegionFlag]) -> None:
        self.probes = _Probes(store)
        self.flag_cache = cache
        self.settings: Any = None


def simulate(
    containers: int, cache_seconds: float, *, seconds: int = SIMULATED_SECONDS, seed: int = 7
) -> dict[str, float]:
    """Reads a second (mean over the steady minutes, busiest second) and the share throttled."""
    clock = _Clock()
    store = _ParameterStore(clock)
    starts = random.Random(seed).sample(range(int(COLD_START_SPREAD_SECONDS * 100)), containers)
    fleet = [(start / 100, _Services(store, Cached(clock, ttl=cache_seconds))) for start in sorted(starts)]
    steps = int(seconds / REQUEST_INTERVAL_SECONDS)
    for step in range(steps):
        clock.now = step * REQUEST_INTERVAL_SECONDS
        for started_at, services in fleet:
            if started_at <= clock.now:
                payments_api.refuse_unless_accepting(services)  # type: ignore[arg-type]
    steady = [store.reads[s] for s in range(int(COLD_START_SPREAD_SECONDS), seconds)]
    total = sum(store.reads.values())
    return {
        "mean": sum(steady) / len(steady),
        "peak": float(max(store.reads.values())),
        "throttled": store.throttled / total if total else 0.0,
    }


def run() -> dict[int, dict[str, dict[str, float]]]:
    """For each fleet size: the deployed cache time ("ours") and the 5 s baseline."""
    return {
        n: {"ours": simulate(n, FLAG_CACHE_SECONDS), "baseline": simulate(n, BASELINE_CACHE_SECONDS)}
        for n in CONTAINERS
    }


def render(results: dict[int, dict[str, dict[str, float]]]) -> list[str]:
    """The results.md section."""
    lines = [
        "## In-service flag reads against Parameter Store's quota",
        "",
        (
            f"Busy API containers (a payment every {REQUEST_INTERVAL_SECONDS:g} s each) over "
            f"{SIMULATED_SECONDS // 60} simulated minutes, through the real `refuse_unless_accepting`; "
            f"Parameter Store's default quota is {PARAMETER_STORE_TPS} reads a second per account and region. "
            f"Ours: the flag kept {FLAG_CACHE_SECONDS:g} s; baseline: kept {BASELINE_CACHE_SECONDS:g} s."
        ),
        "",
        "| containers | reads/s, ours (busiest second) | reads/s, baseline (busiest second) | ratio | throttled, ours | throttled, baseline |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for n, result in results.items():
        ours, base = result["ours"], result["baseline"]
        ratio = ours["mean"] / base["mean"] if base["mean"] else 0.0
        lines.append(
            f"| {n} | {ours['mean']:.2f} ({ours['peak']:.0f}) | {base['mean']:.2f} ({base['peak']:.0f}) | "
            f"**{ratio:.2f}** | {ours['throttled']:.0%} | {base['throttled']:.0%} |"
        )
    lines.append("")
    return lines


if __name__ == "__main__":
    print("\n".join(render(run())))
