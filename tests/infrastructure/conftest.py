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
from aws_cdk import cx_api  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402

from tests.infrastructure.cloudformation import Deployment, Stack, expand  # noqa: E402


def load_cdk_app() -> Any:
    """``infrastructure/app.py`` under its own module name: Chalice imports the runtime as ``app``."""
    if "payments_cdk_app" not in sys.modules:
        spec = importlib.util.spec_from_file_location("payments_cdk_app", INFRASTRUCTURE / "app.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules["payments_cdk_app"] = module
        spec.loader.exec_module(module)
    return sys.modules["payments_cdk_app"]


def synthesize_assembly(outdir: Path, **context: Any) -> cx_api.CloudAssembly:
    """The cloud assembly of the app with ``cdk.json``'s context plus ``context``."""
    cdk_app = load_cdk_app()
    previous = os.getcwd()
    os.chdir(outdir)  # Chalice packages into ./chalice.out
    try:
        app = cdk_app.build_app(cdk.App(context={**cdk_app.default_context(), **context}, outdir=str(outdir / "cdk.out")))
        return app.synth()
    finally:
        os.chdir(previous)


def synthesize(outdir: Path, **context: Any) -> dict[str, Template]:
    """Synthesize both regional stacks with ``cdk.json``'s context plus ``context``."""
    return templates_of(synthesize_assembly(outdir, **context))


def templates_of(assembly: cx_api.CloudAssembly) -> dict[str, Template]:
    return {stack.stack_name: Template.from_json(stack.template) for stack in assembly.stacks}


def deployment_of(assembly: cx_api.CloudAssembly) -> Deployment:
    """Every stack of ``assembly``, SAM expanded, as CloudFormation will deploy it in its region."""
    return Deployment(
        {s.stack_name: Stack(s.stack_name, s.environment.region, expand(s.template)) for s in assembly.stacks}
    )


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the default synthesis writes: ``cdk.out`` and Chalice's packages in ``chalice.out``."""
    return tmp_path_factory.mktemp("synth")


@pytest.fixture(scope="session")
def assembly(synth_dir: Path) -> cx_api.CloudAssembly:
    """The app as synthesized from cdk.json's defaults (suffix dev, us-east-1 + us-east-2)."""
    return synthesize_assembly(synth_dir)


@pytest.fixture(scope="session")
def templates(assembly: cx_api.CloudAssembly) -> Iterator[dict[str, Template]]:
    """Every stack of the default synthesis, as the CDK wrote it."""
    yield templates_of(assembly)


@pytest.fixture(scope="session")
def deployment(assembly: cx_api.CloudAssembly) -> Deployment:
    """Every stack of the default synthesis as CloudFormation deploys it: SAM expanded."""
    return deployment_of(assembly)

