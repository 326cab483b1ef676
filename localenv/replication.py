"""Global-table replication for the local environment only.

moto accepts a global table's replica settings but replicates nothing, so this stands in for
DynamoDB's managed replication: it reads each region's table stream and applies every change
to the other region's table, last writer wins, and measures how far behind it runs. On AWS the
global table does this itself; nothing here is deployed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from localenv.streams import Change, TableStream

POLL_INTERVAL_SECONDS = 0.2


@dataclass
class ReplicationStats:
    """How many changes were copied and how long they took to arrive."""

    applied: int = 0
    lag_ms: list[float] = field(default_factory=list)

    def summary(self) -> str:
        if not self.lag_ms:
            return f"{self.applied} changes replicated"
        ordered = sorted(self.lag_ms)
        p50 = ordered[len(ordered) // 2]
        worst = ordered[-1]
        return f"{self.applied} changes replicated, lag p50 {p50:.0f} ms, max {worst:.0f} ms"


class StreamReplicator:
    """Copies the changes in ``source``'s table stream to the same table in ``target``.

    Each change is applied as the item's *current* state in the source, not as the stream's
    image, because moto's stream can describe writes that never happened (see
    :mod:`localenv.streams`).
    """

    def __init__(self, *, table: str, source: Any, source_streams: Any, target: Any, label: str) -> None:
        self._table = table
        self._source = source
        self._source_streams = source_streams
        self._target = target
        self.label = label
        self.stats = ReplicationStats()
        self._stream: TableStream | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"replicate {label}", daemon=True)

    def start(self) -> None:
        self._stream = TableStream(table=self._table, dynamodb=self._source, streams=self._source_streams)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                self.replicate_once()
            except Exception as error:  # keep replicating after a transient local hiccup
                print(f"[replication {self.label}] error: {type(error).__name__}: {error}", flush=True)
            self._stopped.wait(POLL_INTERVAL_SECONDS)

    def replicate_once(self) -> int:
        """Apply every change waiting in the stream; returns how many were applied."""
        assert self._stream is not None, "start() first"
        return sum(self._apply(change) for change in self._stream.poll())

    def _apply(self, change: Change) -> int:
        """Make the target's item equal the source's current item for ``change``."""
        details = change.record["dynamodb"]
        keys = details["Keys"]
        wanted = change.current
        current = self._target.get_item(TableName=self._table, Key=keys, ConsistentRead=True).get("Item")
        if wanted == current:
            # Already there: our own write coming back, or a change that never happened.
            return 0
        if wanted is None:
            self._target.delete_item(TableName=self._table, Key=keys)
        else:
            self._target.put_item(TableName=self._table, Item=wanted)
        self.stats.applied += 1
        created = details.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            lag = (datetime.now(timezone.utc) - created.astimezone(timezone.utc)).total_seconds() * 1000
            self.stats.lag_ms.append(max(lag, 0.0))
            print(f"[replication {self.label}] {_describe(keys)} lag {lag:.0f} ms", flush=True)
        return 1


def _describe(keys: dict[str, Any]) -> str:
    values = [next(iter(v.values())) for v in keys.values()]
    return "/".join(str(v) for v in values)
