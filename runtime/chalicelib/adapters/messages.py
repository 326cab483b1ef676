"""What the functions send: payments to the processor (SQS), announcements and ops notices (SNS)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from chalicelib.errors import DependencyUnavailable
from chalicelib.observability import report_dependency_failure
from chalicelib.payments import Announced, PaymentRecord, PaymentRequest
from chalicelib.schema import CLIENT_MESSAGE_ATTRIBUTE, CORRELATION_ID_ATTRIBUTE
from chalicelib.sdk import AWS_FAILURES, ClientFactory, LazyClient


class SqsPaymentQueue:
    """The payment queue; the client and the correlation id travel as message attributes."""

    def __init__(self, *, queue_url: str, client: ClientFactory) -> None:
        self._queue_url = queue_url
        self._client = LazyClient(client)

    def enqueue(self, payment: PaymentRequest, *, client: str, correlation_id: str | None) -> None:
        """Send ``client``'s ``payment`` to the processor."""
        attributes = {CLIENT_MESSAGE_ATTRIBUTE: {"DataType": "String", "StringValue": client}}
        if correlation_id:
            attributes[CORRELATION_ID_ATTRIBUTE] = {"DataType": "String", "StringValue": correlation_id}
        try:
            self._client.send_message(
                QueueUrl=self._queue_url,
                MessageBody=json.dumps(payment.to_message(), separators=(",", ":")),
                MessageAttributes=attributes,
            )
        except AWS_FAILURES as error:
            # A message SQS refused outright was never queued: the caller may go elsewhere.
            from chalicelib.failures import refused_outright

            raise DependencyUnavailable("payment queue", committed_nothing=refused_outright(error)) from error


class SnsOpsNotices:
    """What the orchestrator did, published on the ops-alert topic for people and tools."""

    def __init__(self, *, topic_arn: str, client: ClientFactory) -> None:
        self._topic_arn = topic_arn
        self._client = LazyClient(client)

    def announce(self, subject: str, details: dict[str, Any]) -> None:
        try:
            self._client.publish(TopicArn=self._topic_arn, Subject=subject[:100], Message=json.dumps(details))
        except AWS_FAILURES as error:
            raise DependencyUnavailable("ops-alert topic") from error


SNS_PUBLISH_BATCH_LIMIT = 10


class SnsNotifications:
    """The transactions topic; attributes let subscribers filter without parsing the body.

    Publishes ten events per ``PublishBatch`` request, SNS's limit, instead of one request each.
    """

    def __init__(self, *, topic_arn: str, client: ClientFactory) -> None:
        self._topic_arn = topic_arn
        self._client = LazyClient(client)

    def announce(self, items: Sequence[Announced]) -> set[int]:
        """Publish one ``payment.processed`` or ``payment.rejected`` message per item.

        Returns the indices not published.
        """
        failed: set[int] = set()
        for start in range(0, len(items), SNS_PUBLISH_BATCH_LIMIT):
            chunk = range(start, min(start + SNS_PUBLISH_BATCH_LIMIT, len(items)))
            entries = [_publish_entry(str(index), items[index]) for index in chunk]
            try:
                response = self._client.publish_batch(
                    TopicArn=self._topic_arn, PublishBatchRequestEntries=entries
                )
            except AWS_FAILURES as error:
                report_dependency_failure(error, "transactions topic")
                failed.update(chunk)
                continue
            failed.update(int(entry["Id"]) for entry in response.get("Failed", []))
        return failed


def _publish_entry(entry_id: str, item: Announced) -> dict[str, Any]:
    # Only the notifier publishes: the outbox is imported by it alone, not on every cold start.
    from chalicelib.outbox import event_name, notification_body

    body = notification_body(item)
    attributes = {
        "event": {"DataType": "String", "StringValue": event_name(item)},
        "event_id": {"DataType": "String", "StringValue": body["id"]},
    }
    if item.client:
        attributes[CLIENT_MESSAGE_ATTRIBUTE] = {"DataType": "String", "StringValue": item.client}
    if item.currency is not None:
        attributes["currency"] = {"DataType": "String", "StringValue": item.currency}
    if isinstance(item, PaymentRecord):
        attributes["fraud_review"] = {"DataType": "String", "StringValue": str(item.fraud_review).lower()}
    return {
        "Id": entry_id,
        "Message": json.dumps(body, separators=(",", ":")),
        "MessageAttributes": attributes,
    }


class SqsWebhookQueue:
    """The webhook deliveries queue, and its dead-letter queue for deliveries given up."""

    def __init__(self, *, queue_url: str, dlq_url: str, client: ClientFactory) -> None:
        self._queue_url = queue_url
        self._dlq_url = dlq_url
        self._client = LazyClient(client)

    def send(self, body: str, *, delay_seconds: int = 0) -> None:
        self._send(self._queue_url, body, max(0, min(MAX_SQS_DELAY_SECONDS, delay_seconds)))

    def send_all(self, bodies: Sequence[str]) -> None:
        # A batch request per ten messages: an event for five endpoints, a replay's page of fifty.
        for start in range(0, len(bodies), SQS_BATCH_SIZE):
            chunk = bodies[start : start + SQS_BATCH_SIZE]
            try:
                answer = self._client.send_message_batch(
                    QueueUrl=self._queue_url,
                    Entries=[{"Id": str(index), "MessageBody": body} for index, body in enumerate(chunk)],
                )
            except AWS_FAILURES as error:
                raise DependencyUnavailable("webhook deliveries queue") from error
            if answer.get("Failed"):
                # The caller takes its whole work again: what was sent goes twice, with its one event id.
                raise DependencyUnavailable("webhook deliveries queue")

    def dead_letter(self, body: str) -> None:
        self._send(self._dlq_url, body, 0)

    def _send(self, queue_url: str, body: str, delay: int) -> None:
        try:
            self._client.send_message(QueueUrl=queue_url, MessageBody=body, DelaySeconds=delay)
        except AWS_FAILURES as error:
            raise DependencyUnavailable("webhook deliveries queue") from error


# SQS takes at most ten messages a batch.
SQS_BATCH_SIZE = 10
# SQS holds a message back 15 minutes at most: a longer wait is made of several hops.
MAX_SQS_DELAY_SECONDS = 900
