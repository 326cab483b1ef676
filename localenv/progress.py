"""One progress line every few seconds for commands that run longer than a minute.

``make load``, ``make drill`` and ``make bench`` run for minutes; a user must never wonder
whether one hangs. :class:`Heartbeat` prints what its ``describe`` callable returns, on stderr
(the benchmarks capture stdout while they measure), every ``interval`` seconds until stopped.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Self, TextIO

INTERVAL_SECONDS = 10.0


class Heartbeat:
    """Prints ``[  40 s] <label>: <describe()>`` every ``interval`` seconds while running."""

    def __init__(
        self,
        label: str,
        describe: Callable[[], str],
        *,
        interval: float = INTERVAL_SECONDS,
        stream: TextIO | None = None,
    ) -> None:
        self._label = label
        self._describe = describe
        self._interval = interval
        self._stream = stream
        self._stopped = threading.Event()
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat {label}", daemon=True)

    def __enter__(self) -> Self:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stopped.set()
        self._thread.join(timeout=self._interval)

    def line(self) -> str:
        """The line printed now."""
        try:
            state = self._describe()
        except Exception as error:  # noqa: BLE001 - a progress line must never end the run
            state = f"(no figures: {type(error).__name__})"
        return f"[{time.monotonic() - self._started:5.0f} s] {self._label}: {state}"

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            stream = self._stream or sys.stderr
            # One write per line: print() writes the newline separately, and another thread's
            # output could land between the two.
            stream.write(self.line() + "\n")
            stream.flush()
