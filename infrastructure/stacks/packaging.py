"""The Lambda package as the functions need it: bytecode for every module, no unused SDK data.

``chalice package`` zips source only, and Lambda's ``/var/task`` is read-only: every cold start
would compile ``app.py``, ``chalicelib`` and Powertools from source and throw the result away.
This adds a ``__pycache__`` entry beside each module, compiled by the interpreter that packages
(the one whose version Chalice picks as the functions' runtime). The bytecode is unchecked-hash:
Python uses it without comparing source timestamps, which a zip keeps only to two seconds.

The package ships botocore (``runtime/requirements.txt``) but not its API data: the functions
build their clients from ``chalicelib/sdk_data`` alone, and botocore's data is most of its
size. Standard library only, so the benchmarks can package the same way without the CDK.
"""

from __future__ import annotations

import compileall
import importlib.util
import py_compile
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

from chalice.cdk import Chalice

UNUSED_PREFIXES = ("botocore/data/",)
TASK_ROOT = "/var/task"  # where Lambda unpacks the package; tracebacks name files there
PYC_PERMISSIONS = 0o644 << 16


def finish_package(archive: Path) -> None:
    """Leave botocore's API data out of the zip ``archive`` and add bytecode for its modules."""
    leave_out(archive, UNUSED_PREFIXES)
    add_bytecode(archive)


def leave_out(archive: Path, prefixes: tuple[str, ...]) -> int:
    """Remove the entries of ``archive`` under any of ``prefixes``; returns how many."""
    return _rewrite(archive, keep=lambda name: not name.startswith(prefixes))


def add_bytecode(archive: Path) -> int:
    """Add unchecked-hash bytecode for every ``.py`` module in the zip ``archive``; returns how many."""
    with tempfile.TemporaryDirectory() as scratch:
        tree = Path(scratch) / "package"
        with zipfile.ZipFile(archive) as zipped:
            sources = [info for info in zipped.infolist() if info.filename.endswith(".py")]
            for info in sources:
                zipped.extract(info, tree)
        compileall.compile_dir(
            tree,
            ddir=TASK_ROOT,
            quiet=2,
            workers=1,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
        added = []
        for info in sources:
            cached = importlib.util.cache_from_source(info.filename)
            compiled = tree / cached
            if compiled.exists():  # a file that is not valid Python (a template, say) stays source
                entry = zipfile.ZipInfo(cached, date_time=info.date_time)
                entry.external_attr = PYC_PERMISSIONS
                entry.compress_type = zipfile.ZIP_DEFLATED
                added.append((entry, compiled.read_bytes()))
        # Bytecode a developer's run left in chalicelib is timestamp-checked: replaced.
        _rewrite(archive, keep=lambda name: "__pycache__/" not in name, add=added)
    return len(added)


def _rewrite(
    archive: Path, *, keep: Callable[[str], bool], add: Sequence[tuple[zipfile.ZipInfo, bytes]] = ()
) -> int:
    """Rewrite ``archive`` with the entries whose names ``keep`` accepts, then ``add``; returns how many it dropped."""
    rewritten = archive.with_suffix(".tmp")
    dropped = 0
    with zipfile.ZipFile(archive) as original, zipfile.ZipFile(rewritten, "w", zipfile.ZIP_DEFLATED) as out:
        for info in original.infolist():
            if keep(info.filename):
                out.writestr(info, original.read(info))
            else:
                dropped += 1
        for info, data in add:
            out.writestr(info, data)
    shutil.move(rewritten, archive)
    return dropped


class PrecompiledChalice(Chalice):
    """Chalice's construct, finishing the package it builds as ``stacks.packaging`` says."""

    def _package_app(self) -> None:
        # The construct packages and creates its code asset in __init__; the package must be
        # complete before the asset fingerprints it, hence this hook rather than a later step.
        super()._package_app()
        finish_package(Path(self._sam_package_dir) / "deployment.zip")
