"""/health's probes keep their fail-fast budget: one attempt each, one-second timeouts.

Route 53 gives a health check a few seconds; a probe that retried three times with five-second
timeouts (the budget of ordinary calls) would turn a slow dependency into a timed-out check from
every checker at once. Against a server that accepts connections and never answers, each probe
must give up after exactly one request.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from chalicelib import sdk
from chalicelib.ports import Probes
from chalicelib.services import build_aws_services
from chalicelib.settings import Settings

REGION = "us-east-1"


class StallingServer:
    """Accepts TCP connections, never answers; counts them."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self.accepted = 0
        self._held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            self.accepted += 1
            self._held.append(connection)

    def close(self) -> None:
        self._socket.close()
        for connection in self._held:
            connection.close()


@pytest.fixture
def stalling(monkeypatch: pytest.MonkeyPatch) -> Iterator[StallingServer]:
    server = StallingServer()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server.port}")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "local")
    sdk.use_session(None)
    yield server
    server.close()
    sdk.use_session(None)


def probes() -> Probes:
    """The probes exactly as a deployed function builds them."""
    settings = Settings.from_environment(
        {"AWS_REGION": REGION, "PAYMENT_QUEUE_URL": "http://127.0.0.1/000000000000/payment-queue-test"}
    )
    return build_aws_services(settings).probes


@pytest.mark.parametrize("probe", ["table_answers", "queue_answers", "in_service"])
def test_each_probe_makes_one_attempt_and_gives_up(stalling: StallingServer, probe: str) -> None:
    with pytest.raises(Exception):  # noqa: B017 (a timeout, whatever botocore calls it)
        getattr(probes(), probe)()

    assert stalling.accepted == 1


def test_the_probe_budget_is_one_attempt_and_one_second_timeouts() -> None:
    # botocore sets a Config's options as attributes at run time; its stubs do not declare them.
    options = vars(sdk.PROBE_CONFIG)

    assert (
        options["retries"]["total_max_attempts"],
        options["connect_timeout"],
        options["read_timeout"],
    ) == (
        1,
        1,
        1,
    )
