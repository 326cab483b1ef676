"""The Lambda package: bytecode Lambda can use, the pinned SDK, and none of botocore's own data."""

from __future__ import annotations

import importlib.util
import json
import marshal
import re
import sys
import zipfile
from pathlib import Path

from aws_cdk.assertions import Template

from chalicelib.sdk import GENERATED_FROM, SDK_DATA
from stacks.packaging import TASK_ROOT, add_bytecode, leave_out
from tests.infrastructure.test_stacks import PRIMARY, resources

UNCHECKED_HASH = 0b01  # PEP 552 flags: hash-based, do not check the source
ROOT = Path(__file__).resolve().parents[2]


def pins(path: Path) -> dict[str, str]:
    found = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", path.read_text(), re.MULTILINE)
    return {name.lower().replace("_", "-"): version for name, version in found}


def pyc_flags(data: bytes) -> int:
    return int.from_bytes(data[4:8], "little")


def test_every_module_the_functions_import_ships_unchecked_bytecode(
    templates: dict[str, Template], synth_dir: Path
) -> None:
    archives = sorted(synth_dir.glob("chalice.out/*/deployment.zip"))  # one per regional stack
    modules = [
        "app.py",
        "chalicelib/payments_api.py",
        "chalicelib/processor.py",
        "chalicelib/adapters/payments_table.py",
        "chalice/app.py",
        "aws_lambda_powertools/logging/logger.py",
        "botocore/client.py",
        "boto3/session.py",
    ]

    assert len(archives) == 2
    for archive in archives:
        with zipfile.ZipFile(archive) as package:
            names = set(package.namelist())
            for module in modules:
                cached = importlib.util.cache_from_source(module)
                assert module in names and cached in names, module
                assert pyc_flags(package.read(cached)) == UNCHECKED_HASH, cached
            assert not [name for name in names if name.startswith("botocore/data/")]
            assert "chalicelib/sdk_data/dynamodb/2012-08-10/service-2.json" in names


def test_the_shipped_sdk_is_the_one_the_trimmed_data_came_from() -> None:
    shipped = pins(ROOT / "runtime" / "requirements.txt")
    developed = pins(ROOT / "constraints.txt")
    generated_from = json.loads((SDK_DATA / f"{GENERATED_FROM}.json").read_text())["botocore"]

    assert {name: developed[name] for name in shipped} == shipped
    assert shipped["botocore"] == generated_from


def test_the_bytecode_is_for_the_functions_runtime(templates: dict[str, Template]) -> None:
    runtimes = {
        f["Properties"]["Runtime"]
        for f in resources(templates[PRIMARY], "AWS::Serverless::Function").values()
    }

    assert runtimes == {f"python{sys.version_info.major}.{sys.version_info.minor}"}


def test_leaving_out_removes_only_the_named_trees(tmp_path: Path) -> None:
    archive = tmp_path / "deployment.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for name in (
            "botocore/data/sqs/2012-11-05/service-2.json.gz",
            "botocore/client.py",
            "botocore/data.py",
        ):
            zipped.writestr(name, "x")

    removed = leave_out(archive, ("botocore/data/",))

    with zipfile.ZipFile(archive) as zipped:
        assert removed == 1 and sorted(zipped.namelist()) == ["botocore/client.py", "botocore/data.py"]


def test_added_bytecode_replaces_stale_caches_and_names_lambdas_paths(tmp_path: Path) -> None:
    archive = tmp_path / "deployment.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("chalicelib/rule.py", "def fail():\n    raise ValueError('x')\n")
        zipped.writestr(importlib.util.cache_from_source("chalicelib/rule.py"), b"stale timestamp pyc")
        zipped.writestr("chalicelib/template.py", "def {{ name }}(:\n")

    added = add_bytecode(archive)

    with zipfile.ZipFile(archive) as zipped:
        cached = importlib.util.cache_from_source("chalicelib/rule.py")
        assert added == 1
        assert zipped.namelist().count(cached) == 1
        code = marshal.loads(zipped.read(cached)[16:])
        assert code.co_filename == f"{TASK_ROOT}/chalicelib/rule.py"
        assert "chalicelib/template.py" in zipped.namelist()
