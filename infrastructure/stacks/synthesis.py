"""Synthesis without the CDK CLI, for the tests and the cost benchmark.

``infrastructure/app.py`` is loaded under its own module name: Chalice imports the runtime's
``app.py`` as ``app`` while it packages the functions.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import aws_cdk as cdk
from aws_cdk import cx_api

INFRASTRUCTURE = Path(__file__).resolve().parents[1]
CDK_APP_MODULE = "payments_cdk_app"


def load_cdk_app() -> ModuleType:
    """``infrastructure/app.py``, imported once."""
    if CDK_APP_MODULE not in sys.modules:
        spec = importlib.util.spec_from_file_location(CDK_APP_MODULE, INFRASTRUCTURE / "app.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[CDK_APP_MODULE] = module
        spec.loader.exec_module(module)
    return sys.modules[CDK_APP_MODULE]


def default_context() -> dict[str, Any]:
    """The context in ``cdk.json``, as the CDK CLI would pass it."""
    return dict(json.loads((INFRASTRUCTURE / "cdk.json").read_text())["context"])


def synthesize_assembly(outdir: Path, **context: Any) -> cx_api.CloudAssembly:
    """The cloud assembly of the app with ``cdk.json``'s context plus ``context``, written under ``outdir``."""
    cdk_app = load_cdk_app()
    previous = os.getcwd()
    os.chdir(outdir)  # Chalice packages into ./chalice.out
    try:
        app = cdk_app.build_app(
            cdk.App(context={**default_context(), **context}, outdir=str(outdir / "cdk.out"))
        )
        assembly: cx_api.CloudAssembly = app.synth()
        return assembly
    finally:
        os.chdir(previous)
