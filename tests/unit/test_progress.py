"""Progress lines of long commands: printed while they run, and never the end of them."""

from __future__ import annotations

import io
import threading

from localenv.progress import Heartbeat


def test_a_heartbeat_prints_its_label_and_figures_until_stopped() -> None:
    stream = io.StringIO()
    printed = threading.Event()

    def describe() -> str:
        printed.set()
        return "sent 3/10"

    with Heartbeat("load", describe, interval=0.01, stream=stream):
        assert printed.wait(5)
    lines = stream.getvalue().splitlines()

    assert lines and all(line.endswith("load: sent 3/10") for line in lines)
    assert lines[0].startswith("[")


def test_figures_that_cannot_be_read_print_a_line_instead_of_ending_the_run() -> None:
    def broken() -> str:
        raise ConnectionError("the local AWS is gone")

    line = Heartbeat("load", broken).line()

    assert "load: (no figures: ConnectionError)" in line
