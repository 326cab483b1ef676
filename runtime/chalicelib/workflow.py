"""The payment use cases the handlers call: one function per handler, metrics and logs included.

Each function takes parsed input and the services it needs and returns plain data; the
handlers in ``app.py`` only read the request and shape the response.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from chalicelib.cards import contains_pan
from chalicelib.errors import (
    DependencyUnavailable,
    FieldError,
    InvalidQuery,
    MalformedRequest,
    PaymentError,
    PaymentNotFound,
    RegionNotAccepting,
    TransactionConflict,
    UnknownClient,
    ValidationFailed,
)
from chalicelib.failover_numbers import CANARY
from chalicelib.http import parse_document
from chalicelib.idempotency import StoredResponse
from chalicelib.names import (
    CANARY_CLIENT,
    CANARY_TARGET_DIMENSION,
    CLIENT_MESSAGE_ATTRIBUTE,
    CORRELATION_ID_ATTRIBUTE,
)
from chalicelib.observability import (
    CLIENT_LOG_KEY,
    Metric,
    add_dimension,
    count,
    logger,
    milliseconds,
    report_dependency_failure,
)
from chalicelib.payments import PaymentRequest, is_identifier, validate_payment
from chalicelib.processing import Clock, ProcessingOutcome, Rejection, epoch_millis, process_payment
from chalicelib.regions import HealthReport, RegionFlag, evaluate_health
from chalicelib.services import Services

if TYPE_CHECKING:
    from chalicelib.canary import CanaryResult, Http
    from chalicelib.failover import FailoverDecision

# Every function imports this module; the failover rules (orchestrator) and the outbox
# (notifier) are imported by the one function that uses each, not on every cold start.

DEFAULT_PAGE_SIZE = 20
NO_CLIENT = FieldError("(message)", "names no client; only the payment API queues payments")
MAX_PAGE_SIZE = 100
_CORRELATION_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_PAGE_SIZE = re.compile(r"[0-9]{1,3}")


def correlation_id_for(client_value: str | None, request_id: str | None) -> str:
    """The id that ties one payment's log lines together across functions.

    A well-formed ``X-Correlation-Id`` from the client wins, so a caller can follow its own
    request; otherwise API Gateway's request id, otherwise a new one.
    """
    if client_value and _CORRELATION_ID.fullmatch(client_value):
        return client_value
    return request_id or str(uuid.uuid4())


def _validated(document: Any) -> PaymentRequest:
    try:
        payment = validate_payment(document)
    except PaymentError as error:
        count(Metric.REJECTED)
        logger.info("payment rejected", extra={"errors": [e.to_json() for e in error.errors]})
        raise
    count(Metric.VALIDATED)
    if payment.fraud_review:
        count(Metric.FRAUD_FLAGGED)
    return payment


def validate_and_enqueue(
    document: Any, services: Services, *, client: str, correlation_id: str | None
) -> PaymentRequest:
    """``POST /validate``: check ``client``'s payment and queue it for processing if it is acceptable."""
    payment = _validated(document)
    services.queue.enqueue(payment, client=client, correlation_id=correlation_id)
    logger.info(
        "payment accepted",
        extra={"transaction_id": payment.transaction_id, "fraud_review": payment.fraud_review},
    )
    return payment


def identify_client(api_key_id: str | None, services: Services) -> str:
    """The client a request comes from: the owner of the API key API Gateway admitted it with.

    Every payment, rejection and Idempotency-Key record belongs to that client, so the same
    client is found in both regions and across its rotated keys (each has its own key id).
    A key of no client (or none at all, which API Gateway never lets through) is refused.
    """
    client = services.clients.client_of(api_key_id) if api_key_id else None
    if client is None:
        count(Metric.UNKNOWN_CLIENT)
        logger.warning("request with a key of no client", extra={"api_key_id": api_key_id})
        raise UnknownClient()
    logger.append_keys(**{CLIENT_LOG_KEY: client})
    return client


class ClientRequest(NamedTuple):
    """Which client sent a payment request and the idempotency key it carries, if any."""

    client: str
    idempotency_key: str | None = None
    correlation_id: str | None = None
    lambda_context: Any = None


def refuse_unless_accepting(services: Services) -> None:
    """Refuse a new payment while this region drains for a switchover (its flag, cached 60 s deployed).

    A flag that cannot be read never stops payments: ``/health`` reports it and Route 53 acts.
    """

    def own_flag() -> RegionFlag:
        try:
            return services.probes.flag()
        except DependencyUnavailable as error:
            report_dependency_failure(error)
            return RegionFlag(in_service=True)

    if not services.flag_cache.get(own_flag).accepting:
        count(Metric.REFUSED_WHILE_DRAINING)
        raise RegionNotAccepting(services.settings.region)


def accept_payment(document: Any, services: Services, request: ClientRequest) -> StoredResponse:
    """``POST /validate``, at most once per idempotency key: 202 with the verdict."""
    refuse_unless_accepting(services)

    def respond() -> StoredResponse:
        payment = validate_and_enqueue(
            document, services, client=request.client, correlation_id=request.correlation_id
        )
        return StoredResponse(status=202, body=payment.verdict())

    return _once_per_key("validate", document, services, request, respond)


def process_payment_now(document: Any, services: Services, request: ClientRequest) -> StoredResponse:
    """``POST /process``, at most once per idempotency key: 201 new, 200 a repeat."""
    refuse_unless_accepting(services)

    def respond() -> StoredResponse:
        outcome = validate_and_process(document, services, request.client)
        return StoredResponse(status=201 if outcome.created else 200, body=outcome.record.to_json())

    return _once_per_key("process", document, services, request, respond)


def _once_per_key(
    operation: str,
    document: Any,
    services: Services,
    request: ClientRequest,
    respond: Callable[[], StoredResponse],
) -> StoredResponse:
    return services.idempotency.run(
        operation=operation,
        caller=request.client,
        key=request.idempotency_key,
        body=document,
        respond=respond,
        lambda_context=request.lambda_context,
    )


def _processed(payment: PaymentRequest, client: str, services: Services) -> ProcessingOutcome:
    outcome = process_payment(
        payment, client=client, repository=services.repository, region=services.settings.region
    )
    count(Metric.PROCESSED if outcome.created else Metric.DUPLICATE)
    logger.info(
        "payment processed" if outcome.created else "payment already processed",
        extra={"transaction_id": payment.transaction_id, "new_payment": outcome.created},
    )
    return outcome


def validate_and_process(document: Any, services: Services, client: str) -> ProcessingOutcome:
    """``POST /process``: validate and process one of ``client``'s payments synchronously, idempotently."""
    return _processed(_validated(document), client, services)


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
        payment = _validated(document)
    except ValidationFailed as error:
        return _rejected(message, _usable_transaction_id(document), list(error.errors), services, clock)
    try:
        return _processed(payment, message.client, services)
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


def announce_processed_payments(stream_event: dict[str, Any], services: Services) -> dict[str, Any]:
    """The notifier: announce the payments and rejections this region stored, from the table's stream.

    Returns a partial batch response naming the stream positions that could not be published,
    so Lambda retries from the first of them and nothing before it is published again.
    """
    from chalicelib.outbox import announcements_in, failed_positions

    announcements = announcements_in(stream_event, services.settings.region)
    if not announcements:
        return {"batchItemFailures": []}
    failed = services.notifications.announce([a.item for a in announcements])
    count(Metric.ANNOUNCED, len(announcements) - len(failed))
    if failed:
        count(Metric.ANNOUNCE_FAILED, len(failed))
        logger.warning("payment notifications not published", extra={"failed": len(failed)})
    return {"batchItemFailures": [{"itemIdentifier": p} for p in failed_positions(announcements, failed)]}


def find_payment(client: str, transaction_id: str, services: Services) -> dict[str, Any]:
    """``GET /payments/{transaction_id}``: ``client``'s stored payment, or why it was rejected.

    A processed payment lists any rejected reuses of its transaction id beside it; a transaction
    id that was only ever rejected answers with its latest rejection. Another client's payment
    under the same id is not this client's: the answer is the same 404 as for an unused id.
    """
    if not is_identifier(transaction_id):
        raise PaymentNotFound(transaction_id)
    found = services.repository.lookup(client, transaction_id).to_json()
    if found is None:
        raise PaymentNotFound(transaction_id)
    return found


def customer_history(
    client: str, customer_id: str, query: dict[str, str], services: Services
) -> dict[str, Any]:
    """``GET /customers/{customer_id}/payments``: one page of ``client``'s payments, newest first."""
    if not is_identifier(customer_id):
        raise InvalidQuery([FieldError("customer_id", "is not a valid customer id")])
    unknown = set(query) - {"limit", "cursor"}
    if unknown:
        raise InvalidQuery(
            [
                FieldError(name[:64] or "(unnamed parameter)", "is not a recognised parameter")
                for name in sorted(unknown)
            ]
        )
    limit_text = query.get("limit", str(DEFAULT_PAGE_SIZE))
    # ASCII digits only: str.isdigit() also accepts "²", which int() refuses.
    if not _PAGE_SIZE.fullmatch(limit_text) or not 1 <= int(limit_text) <= MAX_PAGE_SIZE:
        raise InvalidQuery([FieldError("limit", f"must be a whole number from 1 to {MAX_PAGE_SIZE}")])
    page = services.repository.list_for_customer(
        client, customer_id, limit=int(limit_text), cursor=query.get("cursor")
    )
    return {
        "payments": [record.to_json() for record in page.payments],
        "next_cursor": page.next_cursor,
    }


def check_health(services: Services) -> HealthReport:
    """``GET /health``: the table and queue answer and the region is in service (cached 5 s).

    Each probe makes one attempt with one-second timeouts (``chalicelib.sdk.PROBE_CONFIG``), so
    the answer comes inside Route 53's few-second budget; a probe that fails logs its cause.

    Dependencies are checked before the flag so that a region taken out of service still says
    what else is wrong with it: failback refuses a region whose only fault is not its flag.
    """
    region = services.settings.region

    def compute() -> HealthReport:
        report = evaluate_health(
            region,
            [
                ("payments table", services.probes.table_answers),
                ("payment queue", services.probes.queue_answers),
                ("in-service flag", services.probes.in_service),
            ],
        )
        if report.cause is not None:
            report_dependency_failure(report.cause, report.failing or "unknown")
        if not report.healthy:
            logger.warning("health check failed", extra={"failing": report.failing})
        return report

    return services.health_cache.get(compute)


def handle_ops_alert(message: str, services: Services, *, now: str | None = None) -> FailoverDecision | None:
    """The failover orchestrator: act on a critical alarm of this region or the canary alarm on its peer.

    In ALARM, either takes its region out of service (its health check then fails and Route 53
    sends clients to the other region), unless the other region is not in service either: the
    last region stays. What was done is published on the ops-alert topic and counted.
    """
    from chalicelib.failover import (
        FailoverAction,
        NotAnAlarm,
        decide,
        guard_last_region,
        parse_alarm_notification,
    )

    try:
        alarm = parse_alarm_notification(message)
    except NotAnAlarm as error:
        logger.info("ignoring ops message that is not a CloudWatch alarm", extra={"reason": str(error)})
        return None
    settings = services.settings
    decision = decide(
        alarm,
        critical_alarms=settings.names.critical_alarms,
        peer_canary_alarm=settings.names.canary_alarm(settings.peer_region) if settings.peer_region else "",
        peer_region=settings.peer_region,
    )
    if decision.action is FailoverAction.TAKE_REGION_OUT_OF_SERVICE:
        count(Metric.FAILOVER_SIGNAL)
        # The region that would stay: the peer when this one goes, this one when the peer goes.
        staying = settings.peer_region if decision.region == settings.region else settings.region
        decision = guard_last_region(decision, peer_in_service=_in_service(services, staying))
    if decision.action is FailoverAction.TAKE_REGION_OUT_OF_SERVICE:
        flag = RegionFlag(
            in_service=False,
            changed_by="failover-orchestrator",
            reason=decision.reason,
            changed_at=now or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )
        try:
            services.region_control.set_flag(decision.region, flag)
        except DependencyUnavailable as error:
            if decision.region == settings.region:
                raise
            # The peer's own Parameter Store is failing too: Route 53 has moved clients already;
            # only the latch that keeps them away once its canary passes again is missing. Not
            # an error of this region's orchestrator (its errors are a failover trigger here).
            report_dependency_failure(error, f"in-service flag of {decision.region}")
            logger.error(
                "could not take the failing peer out of service", extra={"peer_region": decision.region}
            )
            return decision
        services.health_cache.clear()
        count(Metric.FAILOVER_EXECUTED)
        services.ops_notices.announce(
            f"Payments: {decision.region} taken out of service",
            {
                "event": "region.out_of_service",
                "region": decision.region,
                "reason": decision.reason,
                "alarm": alarm.alarm_name,
                "changed_at": flag.changed_at,
            },
        )
    elif decision.action is FailoverAction.REFUSE_LAST_REGION:
        count(Metric.FAILOVER_REFUSED)
        logger.error("failover refused: the peer region is not in service", extra={"region": decision.region})
    logger.info(
        "failover decision",
        extra={
            "alarm": alarm.alarm_name,
            "state": alarm.new_state,
            "alarm_region": alarm.region,
            "action": decision.action.value,
            "reason": decision.reason,
        },
    )
    return decision


def _in_service(services: Services, region: str) -> bool:
    """Whether ``region`` is in service; unknown counts as not (so we never go dark)."""
    if not region:
        return False
    try:
        return services.region_control.flag(region).in_service
    except PaymentError:
        logger.warning("a region's flag cannot be read", extra={"flag_region": region})
        return False


def run_canary(services: Services, http: Http | None = None, *, clock: Clock = epoch_millis) -> CanaryResult:
    """The observer: probe the peer region's payment path once and record the result as metrics.

    Then removes the canary's payments older than a few minutes (both directions' probes: they
    are one client's, in one global table), so its payments stay probes and never become data.
    Never raises: a canary that errors would count as this region's function errors, a failover
    trigger, when it is the peer that fails.
    """
    from chalicelib.canary import CANARY_CUSTOMER, CanaryResult, probe, urllib_http

    peer = services.settings.peer_region
    try:
        url, key = services.peer_api.locate()
        result = probe(peer, url, key, http=http or urllib_http)
    except DependencyUnavailable as error:
        report_dependency_failure(error, f"payment API of {peer}")
        result = CanaryResult(peer, False, 0.0, "locate")
    except Exception as error:  # noqa: BLE001 - whatever went wrong, the peer was not shown to work
        logger.warning("canary error", extra={"error": type(error).__name__})
        result = CanaryResult(peer, False, 0.0, "error")
    add_dimension(CANARY_TARGET_DIMENSION, peer)
    count(Metric.CANARY_SUCCESS, 1 if result.success else 0)
    milliseconds(Metric.CANARY_LATENCY, result.latency_ms)
    (logger.info if result.success else logger.warning)("canary", extra=result.to_json())
    try:
        removed = services.repository.remove_payments(
            CANARY_CLIENT,
            CANARY_CUSTOMER,
            older_than=clock() - CANARY.payments_kept_seconds * 1000,
            limit=CANARY.payments_removed_per_run,
        )
        logger.info("canary payments removed", extra={"removed": removed})
    except DependencyUnavailable as error:
        # Removed by the next run: never a reason for the canary to fail.
        logger.warning("canary payments not removed", extra={"error": str(error)})
    return result
