"""Cold start: a fresh interpreter importing the handler and serving /validate and an SQS batch.

Baseline, measured in the same run: a fresh interpreter doing only ``import boto3, chalice``,
the least any Chalice function on boto3 pays (the floor). A second reference, ``bare``, makes
the payment's AWS calls directly with no framework: it shows what creating the clients costs,
which no implementation can avoid. Runs alternate so machine noise hits all alike; the fastest
run of each is compared (noise only ever adds CPU time), peak memory by median.
"""

from __future__ import annotations

import os
import subprocess
import sys

from bench.common import ROOT, local_aws, median

RUNS = 11


def measure(mode: str, env: dict[str, str]) -> tuple[float, float]:
    output = subprocess.run(
        [sys.executable, "-m", "bench.cold_start_child", mode],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    ).stdout.splitlines()[-1].split()  # the handlers' log lines come first
    return float(output[0]), float(output[1])


def run() -> dict[str, float]:
    """Median CPU seconds and peak RSS (MiB) of the floor and of ours, and their ratios."""
    with local_aws() as aws:
        env = {**os.environ, **aws.environment(), "PYTHONPATH": os.pathsep.join([str(ROOT / "runtime"), str(ROOT)]),
               "POWERTOOLS_METRICS_NAMESPACE": "bench"}
        runs: dict[str, list[tuple[float, float]]] = {"floor": [], "bare": [], "app": []}
        for _ in range(RUNS):
            for mode, results in runs.items():
                results.append(measure(mode, env))
    figures = {}
    for mode, results in runs.items():
        figures[f"{mode}_cpu_ms"] = min(c for c, _ in results) * 1000
        figures[f"{mode}_rss_mib"] = median([m for _, m in results]) / 1024
    for mode in ("bare", "app"):
        figures[f"{mode}_cpu_ratio"] = figures[f"{mode}_cpu_ms"] / figures["floor_cpu_ms"]
        figures[f"{mode}_rss_ratio"] = figures[f"{mode}_rss_mib"] / figures["floor_rss_mib"]
    figures["app_over_bare_cpu_ratio"] = figures["app_cpu_ms"] / figures["bare_cpu_ms"]
    return figures


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name:>14}: {value:.2f}")
