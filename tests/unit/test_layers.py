"""The import contracts in pyproject.toml hold, and a planted wrong import breaks them.

`make lint` runs the same check; here the contracts are also shown to catch what they exist
for, on a copy of the project's packages with one wrong import added.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
# Where each root package lives (pyproject.toml's package-dir), relative to the repository.
PACKAGES = {
    "chalicelib": "runtime/chalicelib",
    "stacks": "infrastructure/stacks",
    "payments_client": "payments-client/payments_client",
    **{name: name for name in ("operations", "localenv", "drills", "chaos", "bench", "e2e", "tools")},
}


def lint_imports(root: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` with the project's contracts (or only ``contracts``), over the packages under ``root``."""
    path = os.pathsep.join(
        str(root / folder) for folder in ("runtime", "infrastructure", "payments-client", ".")
    )
    only = [argument for contract in contracts for argument in ("--contract", contract)]
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache", *only],
        cwd=root,
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    for folder in PACKAGES.values():
        shutil.copytree(
            ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__", "node_modules")
        )
    return tmp_path


def test_the_project_keeps_every_import_contract(project_copy: Path) -> None:
    result = lint_imports(project_copy)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "planted", "contract"),
    [
        # The operator's CLI reaching up into the local environment (how the drill used to sit).
        ("operations/planted.py", "import localenv.environment\n", "layers"),
        # The local environment reaching up into the drill it serves.
        ("localenv/planted.py", "import drills.scenario\n", "layers"),
        # The merchants' client, installed without the service, importing the service.
        ("payments-client/payments_client/planted.py", "import chalicelib.schema\n", "layers"),
        # A domain module calling AWS, directly or through an adapter.
        ("runtime/chalicelib/payments.py", "import botocore.session\n", "domain"),
        ("runtime/chalicelib/failover.py", "import chalicelib.adapters.region_flag\n", "domain"),
        # A use case naming an adapter instead of taking the port the services hand it.
        ("runtime/chalicelib/processor.py", "from chalicelib.adapters import payments_table\n", "use-cases"),
    ],
)
def test_a_planted_wrong_import_breaks_its_contract(
    project_copy: Path, module: str, planted: str, contract: str
) -> None:
    target = project_copy / module
    existing = target.read_text() if target.exists() else '"""Planted."""\n'
    target.write_text(existing + planted)

    result = lint_imports(project_copy, contract)

    assert result.returncode == 1, result.stdout
    assert "0 kept, 1 broken" in result.stdout
