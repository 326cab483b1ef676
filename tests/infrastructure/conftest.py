"""Synthesizes the CDK app once per session, offline, for the infrastructure tests."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

INFRASTRUCTURE = Path(__file__).resolve().parents[2] / "infrastructure"
sys.path.append(str(INFRASTRUCTURE))  # after runtime/, whose app.py Chalice imports as `app`
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402


def load_cdk_app() -> Any:
    """``infrastructure/app.py`` under its own module name: Chalice imports the runtime as ``app``."""
    if "payments_cdk_app" not in sys.modules:
        spec = importlib.util.spec_from_file_location("payments_cdk_app", INFRASTRUCTURE / "app.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules["payments_cdk_app"] = module
        spec.loader.exec_module(module)
    return sys.modules["payments_cdk_app"]


def synthesize(outdir: Path, **context: Any) -> dict[str, Template]:
    """Synthesize both regional stacks with ``cdk.json``'s context plus ``context``."""
    cdk_app = load_cdk_app()
    previous = os.getcwd()
    os.chdir(outdir)  # Chalice packages into ./chalice.out
    try:
        app = cdk_app.build_app(cdk.App(context={**cdk_app.default_context(), **context}, outdir=str(outdir / "cdk.out")))
        assembly = app.synth()
    finally:
        os.chdir(previous)
    return {stack.stack_name: Template.from_json(stack.template) for stack in assembly.stacks}


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the default synthesis writes: ``cdk.out`` and Chalice's packages in ``chalice.out``."""
    return tmp_path_factory.mktemp("synth")


@pytest.fixture(scope="session")
def templates(synth_dir: Path) -> Iterator[dict[str, Template]]:
    """Both stacks as synthesized from cdk.json's defaults (suffix dev, us-east-1 + us-east-2)."""
    yield synthesize(synth_dir)

