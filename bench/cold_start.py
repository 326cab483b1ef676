"""Cold start: a fresh interpreter importing the handler and serving /validate and an SQS batch.

Baseline, measured in the same run: a fresh interpreter doing only ``import boto3, chalice``,
the least any Chalice function on boto3 pays. Runs alternate so machine noise hits both alike;
medians of CPU time and peak memory are compared as ratios.
"""

from __future__ import annotations

import os
import subprocess
import sys

from bench.common import ROOT, local_aws, median

RUNS = 9


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
        floor, ours = [], []
        for _ in range(RUNS):
            floor.append(measure("floor", env))
            ours.append(measure("app", env))
    figures = {
        "floor_cpu_ms": median([c for c, _ in floor]) * 1000,
        "ours_cpu_ms": median([c for c, _ in ours]) * 1000,
        "floor_rss_mib": median([m for _, m in floor]) / 1024,
        "ours_rss_mib": median([m for _, m in ours]) / 1024,
    }
    figures["cpu_ratio"] = figures["ours_cpu_ms"] / figures["floor_cpu_ms"]
    figures["rss_ratio"] = figures["ours_rss_mib"] / figures["floor_rss_mib"]
    return figures


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name:>14}: {value:.2f}")
