"""Sequential writes: how many DynamoDB writes of one request had to wait for the one before.

Two writes made at the same time cost one round trip; two made one after the other cost two, and
in multi-Region strong consistency two cross-region commits. Each write's interval (sent to
answered) is taken from botocore's own events; the figure is the longest chain of writes each
starting after the previous one ended (the most intervals no two of which overlap).

On loopback a write is answered in about a millisecond, the time a thread takes to be scheduled:
two writes sent at once could then be timed as one after the other. A timeline therefore holds
each DynamoDB call for ``round_trip`` seconds before it is sent, as the network between a
function and DynamoDB does, so the chain measures the code's order and not the scheduler's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

WRITE_OPERATIONS = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})


class WriteTimeline:
    """The intervals of every DynamoDB write the clients of one botocore session make."""

    def __init__(self, round_trip: float = 0.02) -> None:
        self.round_trip = round_trip
        self.intervals: list[tuple[float, float]] = []
        self._started: dict[int, float] = {}
        self._lock = threading.Lock()

    def attach(self, session: Any) -> None:
        """Watch the writes of clients ``session`` makes from now on."""
        session.register("before-call.dynamodb", self._start)
        session.register("before-send.dynamodb", self._travel)
        session.register("after-call.dynamodb", self._end)

    def _travel(self, **_: Any) -> None:
        time.sleep(self.round_trip)

    def _start(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        if model.name in WRITE_OPERATIONS:
            with self._lock:
                self._started[id(context)] = time.perf_counter()

    def _end(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        if model.name in WRITE_OPERATIONS:
            with self._lock:
                began = self._started.pop(id(context), None)
                if began is not None:
                    self.intervals.append((began, time.perf_counter()))

    def take(self) -> list[tuple[float, float]]:
        """The intervals seen since the last take, and forget them."""
        with self._lock:
            taken, self.intervals = self.intervals, []
        return taken


def sequential_writes(intervals: Iterable[tuple[float, float]]) -> int:
    """The longest chain of writes each of which began after the one before it ended."""
    chain, last_end = 0, float("-inf")
    for start, end in sorted(intervals, key=lambda interval: interval[1]):
        if start >= last_end:
            chain, last_end = chain + 1, end
    return chain
