"""The payment processor's use case: a batch of queued payments, each stored once or recorded as rejected."""

from __future__ import annotations

from typing import Any, NamedTuple

from chalicelib.cards import contains_pan
from chalicelib.errors import (
    DependencyUnavailable,
    FieldError,
    MalformedRequest,
    TransactionConflict,
    ValidationFailed,
)
from chalicelib.http import parse_document
from chalicelib.observability import (
    Metric,
    count,
    logger,
    report_dependency_failure,
)
from chalicelib.payment_steps import processed, validated
from chalicelib.payments import PaymentRequest, Rejection, is_identifier
from chalicelib.processing import Clock, ProcessingOutcome, epoch_millis
from chalicelib.schema import CLIENT_MESSAGE_ATTRIBUTE, CORRELATION_ID_ATTRIBUTE
from chalicelib.services import Services

NO_CLIENT = FieldError("(message)", "names no client; only the payment API queues payments")


class QueuedMessage(NamedTuple):
    """One payment-queue message as the processor receives it."""

    message_id: str
    body: str
    # When SQS accepted the message (epoch ms); the same on every redelivery.
    sent_at: int
    # The client whose payment it is (a message attribute); None if the message names none.
    client: str | None = None


def process_message(
    message: QueuedMessage, services: Services, *, clock: Clock = epoch_millis
) -> ProcessingOutcome | Rejection:
    """Process one payment-queue message: the payment stored, or the rejection recorded.

    A message that can never succeed (not JSON, not a valid payment, a transaction id reused
    for another payment, no client named: only the API queues payments, always with its client)
    is a business outcome: it is recorded as rejected, announced as
    ``payment.rejected`` and deleted from the queue, never retried or dead-lettered, so no
    client can fill a dead-letter queue. Only what fails for reasons of infrastructure raises
    (:class:`DependencyUnavailable`, or a bug): the queue retries it and then dead-letters it.
    """
    try:
        document = parse_document(message.body)
    except MalformedRequest as error:
        return _rejected(message, None, list(error.errors), services, clock)
    if message.client is None:
        return _rejected(message, None, [NO_CLIENT], services, clock)
    try:
        payment = validated(document)
    except ValidationFailed as error:
        return _rejected(message, _usable_transaction_id(document), list(error.errors), services, clock)
    try:
        return processed(
            payment, client=message.client, repository=services.repository, region=services.settings.region
        )
    except TransactionConflict as error:
        return _rejected(message, payment.transaction_id, list(error.errors), services, clock, payment)


def _usable_transaction_id(document: Any) -> str | None:
    """The transaction id an invalid message names, if it is one a client could look up.

    Never one that holds a card number: it becomes a key and is announced.
    """
    value = document.get("transaction_id") if isinstance(document, dict) else None
    return value if isinstance(value, str) and is_identifier(value) and not contains_pan(value) else None


def _rejected(
    message: QueuedMessage,
    transaction_id: str | None,
    errors: list[FieldError],
    services: Services,
    clock: Clock,
    payment: PaymentRequest | None = None,
) -> Rejection:
    rejection = Rejection(
        transaction_id=transaction_id,
        message_id=message.message_id,
        sent_at=message.sent_at,
        rejected_at=clock(),
        region=services.settings.region,
        errors=tuple(errors),
        customer_id=payment.customer_id if payment else None,
        amount=payment.amount if payment else None,
        currency=payment.currency if payment else None,
        client=message.client,
    )
    recorded = services.repository.record_rejection(rejection)
    if recorded:
        count(Metric.REJECTED_IN_PROCESSING)
    logger.info(
        "payment message rejected" if recorded else "payment message rejected before",
        extra={
            "transaction_id": transaction_id,
            "message_id": message.message_id,
            "errors": [e.to_json() for e in errors],
        },
    )
    return rejection


def process_message_batch(event: dict[str, Any], services: Services) -> dict[str, Any]:
    """Process an SQS batch and report only the messages that failed (partial batch response).

    Rejected payments are not failures: they are recorded and their messages deleted. What is
    reported failed is retried by the queue and dead-lettered after its maximum receives.
    Written out rather than through Powertools' batch processor, whose import loads every event
    data class it knows (about 40 ms of each cold start, for a loop this size).
    """
    failures = []
    for record in event.get("Records", []):
        message_id = record["messageId"]
        attributes = record.get("messageAttributes") or {}
        correlation = attributes.get(CORRELATION_ID_ATTRIBUTE) or {}
        logger.set_correlation_id(correlation.get("stringValue") or message_id)
        client = (attributes.get(CLIENT_MESSAGE_ATTRIBUTE) or {}).get("stringValue")
        sent_at = str((record.get("attributes") or {}).get("SentTimestamp"))
        message = QueuedMessage(
            message_id=message_id,
            body=record["body"],
            sent_at=int(sent_at) if sent_at.isdecimal() else epoch_millis(),
            client=client or None,
        )
        try:
            process_message(message, services)
        except Exception as error:  # noqa: BLE001 - an infrastructure failure or a bug: retried, then dead-lettered
            count(Metric.PROCESSING_FAILED)
            if isinstance(error, DependencyUnavailable):
                report_dependency_failure(error)
            # The type is enough to act on; messages of domain errors never quote the body.
            logger.warning(
                "payment message failed",
                extra={"message_id": message_id, "error": type(error).__name__, "detail": str(error)[:500]},
            )
            failures.append({"itemIdentifier": message_id})
    return {"batchItemFailures": failures}
