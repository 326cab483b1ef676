"""Cold start: a fresh interpreter importing the handler and serving one function's first event.

Baseline, measured in the same run: a fresh interpreter doing only ``import boto3, chalice``,
the least any Chalice function on boto3 pays (the floor). A second reference, ``bare``, makes
the payment's AWS calls through boto3 with no framework: what a plain function pays.

CPU time is the figure; runs alternate so machine noise hits all alike, and the fastest run of
each is compared (noise only ever adds CPU time); peak memory by median. Where valgrind is
installed the instructions each run executes are counted too: the same comparison with no
noise at all, to check the CPU figure against.

The runtime is byte-compiled first, as pip compiled the floor's packages when it installed
them; the Lambda package ships the same bytecode (``infrastructure/stacks/packaging.py``).
"""

from __future__ import annotations

import compileall
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import ROOT, local_aws, median

RUNS = 21
# The API function is the one clients wait on: it is measured as often as the floor, with valgrind too.
MODES = ("floor", "bare", "api")
# The event-driven functions, each from a fresh interpreter on its own first event.
OTHER_FUNCTIONS = ("processor", "notifier", "orchestrator")
OTHER_RUNS = 9


def measure(mode: str, env: dict[str, str]) -> tuple[float, float]:
    output = (
        subprocess.run(
            [sys.executable, "-m", "bench.cold_start_child", mode],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.splitlines()[-1]
        .split()
    )  # the handlers' log lines come first
    return float(output[0]), float(output[1])


def instructions(mode: str, env: dict[str, str]) -> int | None:
    """Instructions one cold start executes, counted by valgrind (None where it is not installed)."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None
    with tempfile.TemporaryDirectory() as scratch:
        result = subprocess.run(
            [
                valgrind,
                "--tool=cachegrind",
                "--cache-sim=no",
                f"--cachegrind-out-file={Path(scratch) / 'out'}",
                sys.executable,
                "-m",
                "bench.cold_start_child",
                mode,
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
    found = re.search(r"I\s+refs:\s+([\d,]+)", result.stderr)
    return int(found.group(1).replace(",", "")) if found else None


def run() -> dict[str, float]:
    """Fastest CPU ms and median peak RSS (MiB) of each mode, and their ratios to the floor."""
    compileall.compile_dir(ROOT / "runtime", quiet=1)
    with local_aws() as aws:
        env = {
            **os.environ,
            **aws.environment(),
            # As Lambda runs a function: its code on sys.path itself (/var/task), not found through
            # the editable install's finder, whose lookups would count against the cold start.
            "PYTHONPATH": os.pathsep.join([str(ROOT / "runtime"), str(ROOT)]),
            "POWERTOOLS_METRICS_NAMESPACE": "bench",
        }
        runs: dict[str, list[tuple[float, float]]] = {mode: [] for mode in (*MODES, *OTHER_FUNCTIONS)}
        for n in range(RUNS):
            for mode, results in runs.items():
                if mode in MODES or n < OTHER_RUNS:
                    results.append(measure(mode, env))
        counted = {mode: instructions(mode, env) for mode in MODES}
    figures = {"runs": float(RUNS), "other_runs": float(OTHER_RUNS)}
    for mode, results in runs.items():
        figures[f"{mode}_cpu_ms"] = min(c for c, _ in results) * 1000
        figures[f"{mode}_rss_mib"] = median([m for _, m in results]) / 1024
    for mode in ("bare", "api", *OTHER_FUNCTIONS):
        figures[f"{mode}_cpu_ratio"] = figures[f"{mode}_cpu_ms"] / figures["floor_cpu_ms"]
        figures[f"{mode}_rss_ratio"] = figures[f"{mode}_rss_mib"] / figures["floor_rss_mib"]
    figures["api_over_bare_cpu_ratio"] = figures["api_cpu_ms"] / figures["bare_cpu_ms"]
    if all(counted.values()):
        for mode in MODES:
            figures[f"{mode}_instructions_m"] = counted[mode] / 1e6  # type: ignore[operator]
        for mode in ("bare", "api"):
            figures[f"{mode}_instructions_ratio"] = counted[mode] / counted["floor"]  # type: ignore[operator]
    return figures


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name:>24}: {value:.2f}")
