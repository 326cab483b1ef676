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
    image: moto applies a cancelled transaction's writes to the stream before rolling the
    table back, so an image can describe a write that never happened. For the same reason the
    shard iterator is asked for afresh on every poll (a rollback replaces the table and its
    stream shard), and the checkpoint never moves past a change whose item is missing in the
    source, because the rolled-back table hands that sequence number out again.
    """

    def __init__(self, *, table: str, source: Any, source_streams: Any, target: Any, label: str) -> None:
        self._table = table
        self._source = source
        self._streams = source_streams
        self._target = target
        self.label = label
        self.stats = ReplicationStats()
        self._stream_arn = ""
        self._checkpoints: dict[str, str | None] = {}
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"replicate {label}", daemon=True)

    def start(self) -> None:
        self._stream_arn = self._source.describe_table(TableName=self._table)["Table"]["LatestStreamArn"]
        shards = self._streams.describe_stream(StreamArn=self._stream_arn)["StreamDescription"]["Shards"]
        self._checkpoints = {shard["ShardId"]: None for shard in shards}
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

    def _iterator(self, shard_id: str) -> str:
        checkpoint = self._checkpoints[shard_id]
        position: dict[str, str] = (
            {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": checkpoint}
            if checkpoint
            else {"ShardIteratorType": "TRIM_HORIZON"}
        )
        return self._streams.get_shard_iterator(StreamArn=self._stream_arn, ShardId=shard_id, **position)[
            "ShardIterator"
        ]

    def replicate_once(self) -> int:
        """Apply every change waiting in the stream; returns how many were applied."""
        applied = 0
        for shard_id in self._checkpoints:
            for record in self._streams.get_records(ShardIterator=self._iterator(shard_id)).get("Records", []):
                wanted = self._source_item(record)
                applied += self._apply(record, wanted)
                if record["eventName"] != "REMOVE" and wanted is None:
                    break
                self._checkpoints[shard_id] = record["dynamodb"]["SequenceNumber"]
        return applied

    def _source_item(self, record: dict[str, Any]) -> dict[str, Any] | None:
        keys = record["dynamodb"]["Keys"]
        return self._source.get_item(TableName=self._table, Key=keys, ConsistentRead=True).get("Item")

    def _apply(self, record: dict[str, Any], wanted: dict[str, Any] | None) -> int:
        """Make the target's item equal ``wanted``, the source's current item for ``record``."""
        change = record["dynamodb"]
        keys = change["Keys"]
        current = self._target.get_item(TableName=self._table, Key=keys, ConsistentRead=True).get("Item")
        if wanted == current:
            # Already there: our own write coming back, or a change that never happened.
            return 0
        if wanted is None:
            if record["eventName"] != "REMOVE":
                return 0
            self._target.delete_item(TableName=self._table, Key=keys)
        else:
            self._target.put_item(TableName=self._table, Item=wanted)
        self.stats.applied += 1
        created = change.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            lag = (datetime.now(timezone.utc) - created.astimezone(timezone.utc)).total_seconds() * 1000
            self.stats.lag_ms.append(max(lag, 0.0))
            print(f"[replication {self.label}] {_describe(keys)} lag {lag:.0f} ms", flush=True)
        return 1


def _describe(keys: dict[str, Any]) -> str:
    values = [next(iter(v.values())) for v in keys.values()]
    return "/".join(str(v) for v in values)

