"""Generate the trimmed botocore API data the Lambda functions build their clients from.

The functions call a dozen operations of four services (``chalicelib.sdk.SDK_OPERATIONS``).
botocore's own data would have every cold start parse a 1.2 MB endpoints file and each
service's full model; this writes, from the pinned botocore, only what those operations need:

- each service's model with just those operations and the shapes they reach, without docs;
- each service's endpoint rule set as it is (endpoint resolution must stay exact);
- the endpoints file with only those services, and the partition and defaults files as they are;
- the botocore version they came from, which the functions check before using them.

``python -m tools.sdk_data`` rewrites ``runtime/chalicelib/sdk_data``; ``--check`` only
compares, and fails when the committed data differs (a test runs it, so a botocore upgrade or
a new operation cannot ship stale data).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import botocore
from botocore.loaders import Loader

from chalicelib.sdk import GENERATED_FROM, SDK_DATA, SDK_OPERATIONS

# Files botocore loads by name whatever the service; _retry is read only by the legacy retry
# mode, kept so an older runtime botocore defaulting to it still finds it.
SHARED_FILES = ("partitions", "sdk-default-configuration", "_retry")


def generate(target: Path, operations: Mapping[str, Sequence[str]] = SDK_OPERATIONS) -> None:
    """Write the trimmed data for ``operations`` (service -> operation names) under ``target``."""
    loader = Loader()
    for service, names in operations.items():
        version = loader.determine_latest_version(service, "service-2")
        model = loader.load_service_model(service, "service-2", version)
        _write(target / service / version / "service-2.json", trimmed_model(model, names))
        _write(
            target / service / version / "endpoint-rule-set-1.json",
            loader.load_service_model(service, "endpoint-rule-set-1", version),
        )
    endpoints = loader.load_data("endpoints")
    _write(
        target / "endpoints.json",
        {
            **endpoints,
            "partitions": [
                {
                    **partition,
                    "services": {
                        name: partition["services"][name]
                        for name in operations
                        if name in partition["services"]
                    },
                }
                for partition in endpoints["partitions"]
            ],
        },
    )
    for name in SHARED_FILES:
        _write(target / f"{name}.json", loader.load_data(name))
    _write(target / f"{GENERATED_FROM}.json", {"botocore": botocore.__version__})


def trimmed_model(model: dict[str, Any], operation_names: Sequence[str]) -> dict[str, Any]:
    """``model`` with only ``operation_names``, the shapes they reach, and no documentation."""
    operations = {name: _undocumented(model["operations"][name]) for name in operation_names}
    reached: set[str] = set()

    def reach(shape_name: str) -> None:
        if shape_name in reached:
            return
        reached.add(shape_name)
        shape = model["shapes"][shape_name]
        for member in shape.get("members", {}).values():
            reach(member["shape"])
        for key in ("member", "key", "value"):
            if key in shape:
                reach(shape[key]["shape"])

    for operation in operations.values():
        for ref in [operation.get("input"), operation.get("output"), *operation.get("errors", [])]:
            if ref:
                reach(ref["shape"])
    shapes = {}
    for name, shape in model["shapes"].items():
        if name in reached:
            shape = _undocumented(shape)
            if "members" in shape:
                shape["members"] = {member: _undocumented(ref) for member, ref in shape["members"].items()}
            shapes[name] = shape
    return {
        **_undocumented(model, extra=("operations", "shapes")),
        "operations": operations,
        "shapes": shapes,
    }


def _undocumented(node: dict[str, Any], extra: Sequence[str] = ()) -> dict[str, Any]:
    # Only the documentation keys of models, operations, shapes and member references: a
    # member itself may be called anything.
    dropped = {"documentation", "documentationUrl", *extra}
    return {key: value for key, value in node.items() if key not in dropped}


def _write(path: Path, document: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, separators=(",", ":")) + "\n")


def differences(committed: Path, generated: Path) -> list[str]:
    """Relative paths that differ between two data trees (missing on either side, or changed)."""

    def files(root: Path) -> dict[str, bytes]:
        return {str(path.relative_to(root)): path.read_bytes() for path in root.rglob("*.json")}

    old, new = files(committed), files(generated)
    return sorted(name for name in old.keys() | new.keys() if old.get(name) != new.get(name))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare with the committed data")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        generated = Path(scratch) / "sdk_data"
        generate(generated)
        changed = differences(SDK_DATA, generated)
        if args.check:
            for name in changed:
                print(f"out of date: {name}", file=sys.stderr)
            if changed:
                print("run `make sdk-data` and commit the result", file=sys.stderr)
            return 1 if changed else 0
        shutil.rmtree(SDK_DATA, ignore_errors=True)
        shutil.copytree(generated, SDK_DATA)
        print(f"wrote {SDK_DATA} ({len(changed)} files changed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
