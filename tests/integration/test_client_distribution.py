"""The merchants' client installs on its own, and the receiver example of docs/api.md works with it.

A clean virtual environment gets ``pip install ./payments-client`` and nothing else; the example
runs there on loopback and is sent deliveries signed with the ``standardwebhooks`` library itself.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from standardwebhooks.webhooks import Webhook

from localenv.network import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
# What the client may bring with it: itself, its two dependencies and theirs.
ALLOWED = {
    "payments-client",
    "requests",
    "standardwebhooks",
    "certifi",
    "charset-normalizer",
    "idna",
    "urllib3",
}


def secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def receiver_example() -> str:
    """The receiver example of docs/api.md, as a merchant would copy it."""
    page = (ROOT / "docs" / "api.md").read_text()
    section = page[page.index("### Receiving webhooks") :]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "docs/api.md has no receiver example"
    return match.group(1)


@pytest.fixture(scope="module")
def clean_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment holding the client's distribution and what it depends on, nothing more."""
    home = tmp_path_factory.mktemp("merchant")
    # A copy, as a merchant gets it: building it leaves nothing in the repository.
    source = shutil.copytree(
        ROOT / "payments-client",
        home / "payments-client",
        ignore=shutil.ignore_patterns("build", "*.egg-info"),
    )
    venv = home / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", str(source)],
        check=True,
        env={**os.environ, "PIP_CONSTRAINT": str(ROOT / "constraints.txt")},
        timeout=300,
    )
    return python


@pytest.fixture(scope="module")
def secrets() -> tuple[str, str]:
    return secret(), secret()  # the endpoint's former secret and its new one, during a rotation


@pytest.fixture(scope="module")
def receiver(
    clean_python: Path, secrets: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    script = tmp_path_factory.mktemp("receiver") / "receiver.py"
    script.write_text(receiver_example())
    port = free_port()
    process = subprocess.Popen(
        [str(clean_python), str(script)],
        env={"PATH": os.environ["PATH"], "WEBHOOK_SECRETS": " ".join(secrets), "PORT": str(port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 20
    while True:
        try:
            requests.get(url, timeout=1)
            break
        except requests.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise
            time.sleep(0.1)
    yield url, process
    process.kill()


def delivery(
    body: str, signing: list[str], *, at: datetime | None = None, event_id: str = ""
) -> dict[str, str]:
    """The headers the service sends, signed by the library with each of ``signing``."""
    event_id = event_id or f"evt_{uuid.uuid4().hex}"
    when = at or datetime.now(UTC)
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": " ".join(Webhook(s).sign(event_id, when, body) for s in signing),
        "Content-Type": "application/json",
    }


def test_the_client_installs_alone_with_only_what_it_needs(clean_python: Path) -> None:
    listed = subprocess.run(
        [str(clean_python), "-m", "pip", "list", "--format", "json"],
        check=True,
        capture_output=True,
        text=True,
    )
    installed = {p["name"].lower() for p in json.loads(listed.stdout)} - {"pip"}
    service = subprocess.run(
        [str(clean_python), "-c", "import chalicelib"],
        check=False,
        capture_output=True,
        cwd=clean_python.parent,
    )

    assert installed <= ALLOWED, installed - ALLOWED
    assert {"payments-client", "requests", "standardwebhooks"} <= installed
    assert service.returncode != 0  # the service is not part of it


def test_the_receiver_example_accepts_each_event_once_and_refuses_what_the_service_did_not_sign(
    receiver: tuple[str, subprocess.Popen[str]], secrets: tuple[str, str]
) -> None:
    url, process = receiver
    old, new = secrets
    event_id = f"evt_{uuid.uuid4().hex}"
    body = json.dumps({"id": event_id, "event": "payment.processed", "client": "m", "payment": {}})
    stale = datetime.now(UTC) - timedelta(minutes=10)

    answers = [
        requests.post(url, data=body, headers=delivery(body, [old, new], event_id=event_id), timeout=5),
        requests.post(url, data=body, headers=delivery(body, [new], event_id=event_id), timeout=5),
        requests.post(url, data=body, headers=delivery(body, [secret()]), timeout=5),
        requests.post(url, data=body, headers=delivery(body, [new], at=stale), timeout=5),
        requests.post(url, data=body + " ", headers=delivery(body, [new]), timeout=5),
    ]
    process.kill()
    printed = process.communicate(timeout=5)[0].splitlines()

    assert [a.status_code for a in answers] == [204, 204, 400, 400, 400]
    # The second delivery of one event id (a retry) is acknowledged and not acted on again.
    assert printed == [f"payment.processed {event_id}"]
