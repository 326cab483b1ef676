"""Synthesis without the CDK CLI, for the tests and the cost benchmark."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import cx_api

from stacks.application import build_app

INFRASTRUCTURE = Path(__file__).resolve().parents[1]


def default_context() -> dict[str, Any]:
    """The context in ``cdk.json``, as the CDK CLI would pass it."""
    return dict(json.loads((INFRASTRUCTURE / "cdk.json").read_text())["context"])


def synthesize_assembly(outdir: Path, **context: Any) -> cx_api.CloudAssembly:
    """The cloud assembly of the app with ``cdk.json``'s context plus ``context``, written under ``outdir``."""
    previous = os.getcwd()
    os.chdir(outdir)  # Chalice packages into ./chalice.out
    try:
        app = build_app(cdk.App(context={**default_context(), **context}, outdir=str(outdir / "cdk.out")))
        assembly: cx_api.CloudAssembly = app.synth()
        return assembly
    finally:
        os.chdir(previous)
