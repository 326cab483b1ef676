"""What the operator CLI needs of the local environment, importable without moto.

``payments-dr`` against a real account must not load the mock library: it finds the local
environment's state file, its consistency modes and the drill's faults here, and imports the
environment itself (and moto) only for ``--local`` work and the drill.
"""

from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Where `make run` says where its local AWS and APIs listen: `payments-dr --local` and
# `chalice local --stage local` read it.
LOCAL_STATE = ROOT / ".localenv" / "state.json"
CONSISTENCY_MODES = ("eventual", "strong")
# The drill's faults (localenv.drill), by name.
FAULTS = {
    "api": "the primary's API stops; its 5XX alarm reaches its own orchestrator",
    "region": "the primary's API stops and replication out of it stops (the region is lost)",
    "gray": "the primary's data plane is denied while its /health answers 200; its orchestrator is off",
    "replication-paused": "replication out of the primary pauses during a planned switchover",
}


def add_consistency_argument(parser: argparse.ArgumentParser) -> None:
    """``--consistency``: the payments table's mode, shared by ``make run`` and the drill."""
    parser.add_argument(
        "--consistency",
        choices=CONSISTENCY_MODES,
        default="eventual",
        help="the payments table as a default global table (eventual, replicated within about a second) "
        "or under multi-Region strong consistency's rules (strong: transactions and TTL refused, each "
        "write in both regions before it is acknowledged); default %(default)s",
    )
