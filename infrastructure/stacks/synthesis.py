"""Synthesis without the CDK CLI, for the tests and the cost benchmark."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import cx_api

from stacks.application import build_app

INFRASTRUCTURE = Path(__file__).resolve().parents[1]
# Chalice keeps the dependencies' zip it builds in the project's .chalice/deployments and reuses it:
# two syntheses at once (the tests' workers) must not write it together.
PACKAGE_CACHE = INFRASTRUCTURE.parent / "runtime" / ".chalice" / "deployments"


@contextmanager
def packaging_alone() -> Iterator[None]:
    """Hold the lock on Chalice's package cache while this process packages the app."""
    PACKAGE_CACHE.mkdir(parents=True, exist_ok=True)
    with (PACKAGE_CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def default_context() -> dict[str, Any]:
    """The context in ``cdk.json``, as the CDK CLI would pass it."""
    return dict(json.loads((INFRASTRUCTURE / "cdk.json").read_text())["context"])


def synthesize_assembly(outdir: Path, **context: Any) -> cx_api.CloudAssembly:
    """The cloud assembly of the app with ``cdk.json``'s context plus ``context``, written under ``outdir``."""
    previous = os.getcwd()
    os.chdir(outdir)  # Chalice packages into ./chalice.out
    try:
        with packaging_alone():
            app = build_app(cdk.App(context={**default_context(), **context}, outdir=str(outdir / "cdk.out")))
            assembly: cx_api.CloudAssembly = app.synth()
        return assembly
    finally:
        os.chdir(previous)
