"""``payments-dr`` against a real account loads no mock library: moto is for ``--local`` and the drill."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# moto made unimportable, as on an operator's machine that never installed it.
WITHOUT_MOTO = "import sys; sys.modules['moto'] = None; "


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_MOTO + code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_operator_cli_imports_and_answers_help_without_moto() -> None:
    imported = run(
        "import operations.cli; "
        "assert not any(name == 'localenv.moto_fixes' or name.startswith('moto') and sys.modules[name] "
        "for name in sys.modules), sorted(n for n in sys.modules if 'moto' in n)"
    )
    helped = run("import operations.cli; operations.cli.main(['--help'])")

    assert imported.returncode == 0, imported.stderr
    assert helped.returncode == 0, helped.stderr
    assert "payments-dr" in helped.stdout


def test_the_check_fails_when_the_cli_imports_the_local_environment() -> None:
    # The planted-bad twin: what importing the local environment (and so moto) looks like.
    broken = run("import localenv.environment")

    assert broken.returncode != 0 and "moto" in broken.stderr
