"""A DynamoDB table's stream read on a local AWS, as Lambda's event source mapping would.

Shared by local replication, the local notifier runner and the tests. moto applies a cancelled
transaction's writes to the stream before rolling the table back, so its stream can describe
writes that never happened; every change is checked against the table's current item before it
is handed on. For the same reason the shard iterator is asked for afresh on every poll (a
rollback replaces the table and its stream shard), and the checkpoint never moves past a change
whose item is missing, because the rolled-back table hands that sequence number out again.
On AWS none of this exists: the stream is exact and Lambda reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Change:
    """One stream record and the item as the table holds it now (None: deleted or never written)."""

    record: dict[str, Any]
    current: dict[str, Any] | None

    @property
    def happened(self) -> bool:
        """True unless moto invented the record: the table holds exactly what it describes."""
        if self.record["eventName"] == "REMOVE":
            return self.current is None
        return self.current == self.record["dynamodb"].get("NewImage")


class TableStream:
    """Polls one table's stream from the beginning, remembering how far it has read."""

    def __init__(self, *, table: str, dynamodb: Any, streams: Any) -> None:
        self.table = table
        self._dynamodb = dynamodb
        self._streams = streams
        self.stream_arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
        shards = streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
        self._checkpoints: dict[str, str | None] = {shard["ShardId"]: None for shard in shards}

    def _iterator(self, shard_id: str) -> str:
        checkpoint = self._checkpoints[shard_id]
        position: dict[str, str] = (
            {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": checkpoint}
            if checkpoint
            else {"ShardIteratorType": "TRIM_HORIZON"}
        )
        return self._streams.get_shard_iterator(StreamArn=self.stream_arn, ShardId=shard_id, **position)[
            "ShardIterator"
        ]

    def poll(self) -> list[Change]:
        """Every change waiting in the stream, each with the table's current item."""
        changes = []
        for shard_id in self._checkpoints:
            for record in self._streams.get_records(ShardIterator=self._iterator(shard_id)).get("Records", []):
                keys = record["dynamodb"]["Keys"]
                current = self._dynamodb.get_item(TableName=self.table, Key=keys, ConsistentRead=True).get("Item")
                if record["eventName"] != "REMOVE" and current is None:
                    break
                changes.append(Change(record=record, current=current))
                self._checkpoints[shard_id] = record["dynamodb"]["SequenceNumber"]
        return changes


def lambda_stream_event(changes: list[Change], stream_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda's DynamoDB event source would deliver for the changes that happened."""
    records = []
    for change in changes:
        if not change.happened:
            continue
        details = dict(change.record["dynamodb"])
        created = details.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            details["ApproximateCreationDateTime"] = created.timestamp()
        records.append(
            {
                "eventID": change.record.get("eventID", ""),
                "eventName": change.record["eventName"],
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": region,
                "dynamodb": details,
                "eventSourceARN": stream_arn,
            }
        )
    return {"Records": records}
