"""A DynamoDB table's stream read on a local AWS, as Lambda's event source mapping would.

Shared by local replication, the local notifier runner and the tests. With
:mod:`localenv.moto_fixes` installed, moto's stream holds exactly the writes that happened,
in order; on AWS none of this exists, Lambda and global tables read the stream themselves.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

MAX_RECORDS_PER_READ = 1000


class TableStream:
    """Polls one table's stream from the beginning, remembering how far it has read."""

    def __init__(self, *, table: str, dynamodb: Any, streams: Any) -> None:
        self.table = table
        self._streams = streams
        self.stream_arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
        shards = streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
        self._iterators: dict[str, str] = {
            shard["ShardId"]: streams.get_shard_iterator(
                StreamArn=self.stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            for shard in shards
        }

    def poll(self) -> list[dict[str, Any]]:
        """Every record added to the stream since the last poll, oldest first."""
        records: list[dict[str, Any]] = []
        for shard_id, iterator in self._iterators.items():
            response = self._streams.get_records(ShardIterator=iterator, Limit=MAX_RECORDS_PER_READ)
            records.extend(response.get("Records", []))
            self._iterators[shard_id] = response["NextShardIterator"]
        return records


def lambda_stream_event(records: list[dict[str, Any]], stream_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda's DynamoDB event source would deliver for ``records``."""
    delivered = []
    for record in records:
        details = dict(record["dynamodb"])
        created = details.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            details["ApproximateCreationDateTime"] = created.timestamp()
        delivered.append(
            {
                "eventID": record.get("eventID", ""),
                "eventName": record["eventName"],
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": region,
                "dynamodb": details,
                "eventSourceARN": stream_arn,
            }
        )
    return {"Records": delivered}
