"""MiniStack, the local AWS emulator, in a process of its own on loopback."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Self

import requests

from localenv.network import free_port

ACCOUNT = "000000000000"
CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
# The machine may preset CA bundles for its proxy; the emulator is plain HTTP on loopback.
_UNSET = ("AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS", "AWS_PROFILE")


class Emulator:
    """A MiniStack server started from ``python`` (its own virtual environment), stopped on exit."""

    def __init__(self, python: Path, log: Path, *, node_path: Path | None = None) -> None:
        self.python, self.log, self.node_path = python, log, node_path
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        env = {k: v for k, v in os.environ.items() if k not in _UNSET and not k.startswith("AWS_")}
        env.update(GATEWAY_PORT=str(self.port), BIND_HOST="127.0.0.1", LOG_LEVEL="WARNING")
        if self.node_path is not None:
            env["NODE_PATH"] = str(self.node_path)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._process = subprocess.Popen(
            # MiniStack with two differences from AWS corrected (see the script and make e2e's gaps).
            [str(self.python), str(Path(__file__).with_name("ministack_fixes.py"))],
            env=env,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the emulator exited with {self._process.returncode}: see {self.log}")
            try:
                requests.get(f"{self.endpoint}/_ministack/health", timeout=1)
                return self
            except requests.ConnectionError:
                time.sleep(0.2)
        raise RuntimeError(f"the emulator did not answer on {self.endpoint} within 60 s: see {self.log}")

    def __exit__(self, *exc: object) -> None:
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, 15)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, 9)
