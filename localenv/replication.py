"""Global-table replication for the local environment only.

moto accepts a global table's replica settings but replicates nothing, so this stands in for
DynamoDB's managed replication: it reads each region's table stream and applies every change
to the other region's table, last writer wins, and measures how far behind it runs. Writes it
made itself are not copied back (:class:`ReplicaWrites`). On AWS the
global table does this itself; nothing here is deployed.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from localenv.streams import TableStream

POLL_INTERVAL_SECONDS = 0.2
BATCH_WRITE_LIMIT = 25  # DynamoDB's BatchWriteItem maximum
# One console line per replicated item; off for load runs, where it would be thousands.
VERBOSE = True


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


class ReplicaWrites:
    """The writes replication made, so the reverse replicator does not copy them back.

    DynamoDB marks its own replicated writes; locally each copied image is remembered per
    region and table, and the stream record it causes there is recognised and skipped.
    """

    def __init__(self) -> None:
        # Every image written per item, oldest first: an item can change twice before the
        # first copy's stream record is seen (an idempotency record goes INPROGRESS, COMPLETED).
        self._written: dict[tuple[str, str, str], list[dict[str, Any] | None]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(region: str, table: str, keys: dict[str, Any]) -> tuple[str, str, str]:
        return (region, table, json.dumps(keys, sort_keys=True))

    def remember(self, region: str, table: str, keys: dict[str, Any], image: dict[str, Any] | None) -> None:
        with self._lock:
            self._written.setdefault(self._key(region, table, keys), []).append(image)

    def is_echo(self, region: str, table: str, keys: dict[str, Any], image: dict[str, Any] | None) -> bool:
        """True (once) when ``image`` in ``region`` is what replication itself wrote there."""
        key = self._key(region, table, keys)
        with self._lock:
            images = self._written.get(key, [])
            if image in images:
                images.remove(image)
                if not images:
                    del self._written[key]
                return True
        return False


class StreamReplicator:
    """Copies the changes in ``source``'s table stream to the same table in ``target``."""

    def __init__(
        self,
        *,
        table: str,
        source: Any,
        source_streams: Any,
        target: Any,
        source_region: str,
        target_region: str,
        ledger: ReplicaWrites,
    ) -> None:
        self._table = table
        self._source = source
        self._source_streams = source_streams
        self._target = target
        self._source_region = source_region
        self._target_region = target_region
        self._ledger = ledger
        self.label = f"{table} {source_region}->{target_region}"
        self.stats = ReplicationStats()
        self._stream: TableStream | None = None
        self._stopped = threading.Event()
        self._paused = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"replicate {self.label}", daemon=True)

    @property
    def source_region(self) -> str:
        return self._source_region

    @property
    def table(self) -> str:
        return self._table

    def pause(self) -> None:
        """Stop copying (changes wait in the stream, as they would behind a regional outage)."""
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()

    def start(self) -> None:
        self._stream = TableStream(table=self._table, dynamodb=self._source, streams=self._source_streams)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stopped.is_set():
            if self._paused.is_set():
                self._stopped.wait(POLL_INTERVAL_SECONDS)
                continue
            try:
                self.replicate_once()
            except Exception as error:  # noqa: BLE001 - keep replicating after a transient local hiccup
                print(f"[replication {self.label}] error: {type(error).__name__}: {error}", flush=True)
            self._stopped.wait(POLL_INTERVAL_SECONDS)

    def replicate_once(self) -> int:
        """Apply every change waiting in the stream, in order; returns how many were applied.

        Changes go out as ``BatchWriteItem`` requests of up to 25, one request per batch instead
        of one per change: under load a change-by-change copy made one round trip to the local
        AWS per item and fell seconds behind (py-spy: the replicator threads waited on those
        round trips). A batch never holds the same key twice, so the order of changes to one
        item is kept, as DynamoDB's replication keeps it.
        """
        assert self._stream is not None, "start() first"
        batch: list[dict[str, Any]] = []
        applied = 0
        for record in self._stream.poll():
            details = record["dynamodb"]
            if self._ledger.is_echo(
                self._source_region, self._table, details["Keys"], details.get("NewImage")
            ):
                continue
            if len(batch) == BATCH_WRITE_LIMIT or any(
                r["dynamodb"]["Keys"] == details["Keys"] for r in batch
            ):
                applied += self._write(batch)
                batch = []
            batch.append(record)
        return applied + self._write(batch)

    def _write(self, batch: list[dict[str, Any]]) -> int:
        if not batch:
            return 0
        requests = []
        for record in batch:
            details = record["dynamodb"]
            keys, image = details["Keys"], details.get("NewImage")
            # Remember before writing: the target's stream may show the write before the call returns.
            self._ledger.remember(self._target_region, self._table, keys, image)
            requests.append(
                {"DeleteRequest": {"Key": keys}} if image is None else {"PutRequest": {"Item": image}}
            )
        pending = {self._table: requests}
        while pending:
            pending = self._target.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
        now = datetime.now(UTC)
        for record in batch:
            self._measure(record["dynamodb"], now)
        self.stats.applied += len(batch)
        return len(batch)

    def _measure(self, details: dict[str, Any], now: datetime) -> None:
        created = details.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            lag = (now - created.astimezone(UTC)).total_seconds() * 1000
            self.stats.lag_ms.append(max(lag, 0.0))
            if VERBOSE:
                print(f"[replication {self.label}] {_describe(details['Keys'])} lag {lag:.0f} ms", flush=True)


def _describe(keys: dict[str, Any]) -> str:
    values = [next(iter(v.values())) for v in keys.values()]
    return "/".join(str(v) for v in values)
