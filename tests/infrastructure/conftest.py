"""Synthesizes the CDK app once per session, offline, for the infrastructure tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk import cx_api
from aws_cdk.assertions import Template

from stacks.synthesis import INFRASTRUCTURE, synthesize_assembly
from tests.infrastructure.cloudformation import Deployment, Stack, expand

__all__ = ["INFRASTRUCTURE", "synthesize_assembly"]


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
