"""``chalice local --stage local``: the API served against the local AWS that ``make run`` started.

``make run`` writes where its local AWS and each region's resources are to a state file; the
``local`` stage in ``.chalice/config.json`` names that file, and the app reads it at import when
nothing else points it at an AWS. Never used in Lambda: the deployed stage names no state file,
and its environment always holds the region and resources.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import MutableMapping
from pathlib import Path
from urllib.parse import urlsplit

from chalicelib.names import EnvVar

# Set by the `local` stage (a path relative to the Chalice project); PAYMENTS_LOCAL_STATE set in
# the shell wins, since Chalice writes stage variables over the shell's.
STATE_FILE_VARIABLE = "PAYMENTS_LOCAL_STATE"
STAGE_STATE_FILE_VARIABLE = "PAYMENTS_LOCAL_STATE_DEFAULT"
# Which region's resources to serve (default: the first region of `make run`).
REGION_VARIABLE = "PAYMENTS_LOCAL_REGION"
ENDPOINT_VARIABLE = "AWS_ENDPOINT_URL"
PROJECT_DIR = Path(__file__).resolve().parents[1]
# Python's HTTP server listens with a backlog of 5: a sixth client connecting at once is refused
# or reset. Twenty clients of the local API (a load run, a drill) must all get in.
LISTEN_BACKLOG = 128


class LocalAwsNotRunning(RuntimeError):
    """The local stage was asked for, but `make run` is not up."""


def state_file(environ: MutableMapping[str, str]) -> Path | None:
    """The state file the local stage reads, or None when no stage or shell names one."""
    named = environ.get(STATE_FILE_VARIABLE) or environ.get(STAGE_STATE_FILE_VARIABLE)
    return (PROJECT_DIR / named).resolve() if named else None


def use_make_run_environment(environ: MutableMapping[str, str] = os.environ) -> str | None:
    """Point this process at `make run`'s local AWS; returns the region served, or None.

    Does nothing when no state file is named, or when the environment already points at an AWS
    endpoint (`make run`'s own API processes). Raises :class:`LocalAwsNotRunning` with the one
    line that says what to start when the file is missing or its AWS does not answer.
    """
    path = state_file(environ)
    if path is None or environ.get(ENDPOINT_VARIABLE):
        return None
    not_running = LocalAwsNotRunning(
        f"the local AWS is not running: start it with `make run` in {PROJECT_DIR.parent}, "
        "then run `chalice local --stage local` again"
    )
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise not_running from error
    if not _answers(state.get("endpoint_url", "")):
        raise not_running
    region = environ.get(REGION_VARIABLE) or state["regions"][0]
    if region not in state.get("functions", {}):
        raise LocalAwsNotRunning(f"`make run` serves {', '.join(state['regions'])}, not {region}")
    environ.update(state["functions"][region])
    environ[EnvVar.DEFAULT_REGION] = environ[EnvVar.REGION] = region
    return region


def _answers(endpoint: str) -> bool:
    parts = urlsplit(endpoint)
    if not parts.hostname or not parts.port:
        return False
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=1):
            return True
    except OSError:
        return False


def widen_listen_backlog() -> None:
    """Let Chalice's local server queue :data:`LISTEN_BACKLOG` connections instead of 5."""
    from chalice.local import ThreadedHTTPServer

    ThreadedHTTPServer.request_queue_size = LISTEN_BACKLOG


def prepare_chalice_local() -> None:
    """What the app does when the chalice command line imports it: widen the backlog, find `make run`.

    Without `make run`, one line says what to start and the process ends.
    """
    widen_listen_backlog()
    try:
        use_make_run_environment()
    except LocalAwsNotRunning as not_running:
        sys.stderr.write(f"chalice local: {not_running}\n")
        sys.stderr.flush()
        # The app is imported in the dev server's thread when autoreload is on, where SystemExit
        # would end only that thread and leave the process waiting: end the process itself.
        os._exit(1)
