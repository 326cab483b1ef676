"""Size of the Lambda deployment package `chalice package` builds, against a bare Chalice app.

Baseline: a one-route Chalice app with no requirements, packaged the same way in the same run:
what any Chalice function ships. Ours adds ``chalicelib`` and ``runtime/requirements.txt``, and is
finished as the CDK stack finishes it (``infrastructure/stacks/packaging.py``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from bench.common import ROOT
from stacks.packaging import finish_package

PLACEHOLDER_ROLE = "arn:aws:iam::123456789012:role/payments-bench"
BARE_APP = 'from chalice import Chalice\n\napp = Chalice(app_name="bare")\n\n\n@app.route("/")\ndef index():\n    return {}\n'


def package(source: Path, out: Path) -> Path:
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    chalice = Path(sys.executable).with_name("chalice")
    subprocess.run(
        [str(chalice), "package", "--stage", "prod", str(out)],
        cwd=source,
        env=env,
        check=True,
        capture_output=True,
    )
    return out / "deployment.zip"


def unpacked_bytes(archive: Path) -> int:
    with zipfile.ZipFile(archive) as zipped:
        return sum(info.file_size for info in zipped.infolist())


def run() -> dict[str, float]:
    """Zipped and unpacked sizes in KiB of ours and of the bare app."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bare = work / "bare"
        (bare / ".chalice").mkdir(parents=True)
        (bare / "app.py").write_text(BARE_APP)
        (bare / "requirements.txt").write_text("")
        (bare / ".chalice" / "config.json").write_text(
            json.dumps(
                {
                    "version": "2.0",
                    "app_name": "bare",
                    "stages": {"prod": {"manage_iam_role": False, "iam_role_arn": PLACEHOLDER_ROLE}},
                }
            )
        )
        ours_source = work / "runtime"
        shutil.copytree(
            ROOT / "runtime", ours_source, ignore=shutil.ignore_patterns("__pycache__", "deployments")
        )
        # As the CDK stack packages it: roles come from CDK, so Chalice's policy analyzer never runs.
        config_file = ours_source / ".chalice" / "config.json"
        config = json.loads(config_file.read_text())
        config["stages"]["prod"].update(manage_iam_role=False, iam_role_arn=PLACEHOLDER_ROLE)
        config_file.write_text(json.dumps(config))
        bare_zip = package(bare, work / "bare-out")
        ours_zip = package(ours_source, work / "ours-out")
        finish_package(ours_zip)
        figures = {
            "ours_zip_kib": ours_zip.stat().st_size / 1024,
            "bare_zip_kib": bare_zip.stat().st_size / 1024,
            "ours_unpacked_kib": unpacked_bytes(ours_zip) / 1024,
            "bare_unpacked_kib": unpacked_bytes(bare_zip) / 1024,
        }
    figures["zip_ratio"] = figures["ours_zip_kib"] / figures["bare_zip_kib"]
    return figures


if __name__ == "__main__":
    print(run())
