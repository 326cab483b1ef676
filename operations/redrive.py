"""Moving dead-lettered payment messages back to the payment queue.

Each message is sent to the queue before it is deleted from the dead-letter queue, so a crash
mid-way can only leave a copy in both; the processor's idempotency makes the copy harmless
(one payment per transaction id). SQS's own StartMessageMoveTask does the same on AWS, but the
local AWS lacks it and it reports no per-message outcome, so the move is done here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RECEIVE_BATCH = 10
# Long enough to send and delete a batch; a message not deleted by then returns to the DLQ.
IN_FLIGHT_SECONDS = 30


@dataclass(frozen=True)
class RedriveReport:
    """What a redrive found in the dead-letter queue and what it moved."""

    waiting: int
    moved: int
    failed: int
    dry_run: bool

    def summary(self) -> str:
        if self.dry_run:
            return f"{self.waiting} message(s) in the dead-letter queue; dry run, nothing moved"
        return f"moved {self.moved} message(s) back to the payment queue, {self.failed} failed"


def waiting_messages(sqs: Any, queue_url: str) -> int:
    """How many messages a queue holds (visible and in flight)."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def redrive(
    sqs: Any, *, dlq_url: str, queue_url: str, dry_run: bool = False, limit: int | None = None
) -> RedriveReport:
    """Move up to ``limit`` messages (default: all) from ``dlq_url`` back to ``queue_url``."""
    waiting = waiting_messages(sqs, dlq_url)
    if dry_run:
        return RedriveReport(waiting=waiting, moved=0, failed=0, dry_run=True)
    moved = failed = 0
    while limit is None or moved + failed < limit:
        wanted = RECEIVE_BATCH if limit is None else min(RECEIVE_BATCH, limit - moved - failed)
        messages = sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=wanted,
            VisibilityTimeout=IN_FLIGHT_SECONDS,
            WaitTimeSeconds=1,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            break
        sent = sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {
                    "Id": str(index),
                    "MessageBody": m["Body"],
                    "MessageAttributes": m.get("MessageAttributes", {}),
                }
                for index, m in enumerate(messages)
            ],
        )
        delivered = [messages[int(entry["Id"])] for entry in sent.get("Successful", [])]
        if delivered:
            sqs.delete_message_batch(
                QueueUrl=dlq_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(delivered)
                ],
            )
        moved += len(delivered)
        failed += len(sent.get("Failed", []))
    return RedriveReport(waiting=waiting, moved=moved, failed=failed, dry_run=False)
