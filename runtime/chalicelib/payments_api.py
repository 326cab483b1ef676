"""The payment API's use cases: who the client is, taking a payment (queued or now), the reads, /health.

Called by the API function's routes (``runtime/app.py``); each takes parsed input and the services it
needs and returns plain data, with its logs and metrics.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any, NamedTuple

from chalicelib.errors import (
    DependencyUnavailable,
    FieldError,
    IdempotencyKeyReused,
    InvalidQuery,
    PaymentNotFound,
    RegionNotAccepting,
    UnknownClient,
)
from chalicelib.idempotency import KeyBinding, StoredResponse, binding_id, body_digest, new_binding
from chalicelib.observability import (
    CLIENT_LOG_KEY,
    Metric,
    count,
    logger,
    report_dependency_failure,
)
from chalicelib.payment_steps import processed, validated
from chalicelib.payments import PaymentRequest, is_identifier
from chalicelib.processing import ProcessingOutcome
from chalicelib.regions import HealthCheck, HealthReport, RegionFlag, evaluate_health
from chalicelib.services import Services

DEFAULT_PAGE_SIZE = 20
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


def enqueue(payment: PaymentRequest, services: Services, *, client: str, correlation_id: str | None) -> None:
    """Queue ``client``'s validated ``payment`` for the processor (``POST /validate``)."""
    services.queue.enqueue(payment, client=client, correlation_id=correlation_id)
    logger.info(
        "payment accepted",
        extra={"transaction_id": payment.transaction_id, "fraud_review": payment.fraud_review},
    )


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
    """``POST /validate``: 202 with the verdict; with an ``Idempotency-Key``, the first answer again.

    A keyed request binds its key once the payment is queued (:mod:`chalicelib.idempotency`).
    """
    payment = validated(document)
    bound = _binding_of("validate", document, services, request)
    if bound is not None:
        return StoredResponse(status=bound.status, body=payment.verdict(), replayed=True)
    refuse_unless_accepting(services)
    enqueue(payment, services, client=request.client, correlation_id=request.correlation_id)
    answer = StoredResponse(status=202, body=payment.verdict())
    _bind("validate", document, services, request, payment.transaction_id, answer.status)
    return answer


def process_payment_now(document: Any, services: Services, request: ClientRequest) -> StoredResponse:
    """``POST /process``: 201 new, 200 a repeat; with an ``Idempotency-Key``, the first answer again.

    A keyed request binds its key while the payment's record is written (:mod:`chalicelib.idempotency`):
    at most two sequential writes, and no in-progress marker. A replay is answered before a
    draining region refuses new work.
    """
    payment = validated(document)
    bound = _binding_of("process", document, services, request)
    if bound is None:
        refuse_unless_accepting(services)

    def bind(outcome: ProcessingOutcome) -> None:
        if bound is None:
            _bind("process", document, services, request, payment.transaction_id, _status(outcome))

    outcome = processed(
        payment,
        client=request.client,
        repository=services.repository,
        region=services.settings.region,
        on_stored=None if request.idempotency_key is None else bind,
    )
    if bound is not None:
        return StoredResponse(status=bound.status, body=outcome.record.to_json(), replayed=True)
    return StoredResponse(status=_status(outcome), body=outcome.record.to_json())


def _status(outcome: ProcessingOutcome) -> int:
    return 201 if outcome.created else 200


def _binding_of(
    operation: str, document: Any, services: Services, request: ClientRequest
) -> KeyBinding | None:
    """The live binding of the request's key on ``operation`` (None without a key, or a free one);
    a key bound to another body is refused."""
    if request.idempotency_key is None:
        return None
    bound = services.key_bindings.find(binding_id(operation, request.client, request.idempotency_key))
    if bound is not None and bound.body_digest != body_digest(document):
        raise IdempotencyKeyReused()
    return bound


def _bind(
    operation: str,
    document: Any,
    services: Services,
    request: ClientRequest,
    transaction_id: str,
    status: int,
) -> None:
    """Bind the request's key (if it has one) to the answer just given; a failure loses only the binding.

    The work stands either way: a retry of an unbound key finds the payment by its transaction id.
    """
    if request.idempotency_key is None:
        return
    binding = new_binding(
        operation,
        request.client,
        request.idempotency_key,
        document=document,
        transaction_id=transaction_id,
        status=status,
        now=time.time(),
    )
    try:
        services.key_bindings.bind(binding)
    except DependencyUnavailable as error:
        report_dependency_failure(error)


def validate_and_process(document: Any, services: Services, client: str) -> ProcessingOutcome:
    """``POST /process``: validate and process one of ``client``'s payments synchronously, idempotently."""
    return processed(
        validated(document), client=client, repository=services.repository, region=services.settings.region
    )


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
                (HealthCheck.PAYMENTS_TABLE, services.probes.table_answers),
                (HealthCheck.PAYMENT_QUEUE, services.probes.queue_answers),
                (HealthCheck.IN_SERVICE_FLAG, services.probes.in_service),
            ],
        )
        if report.cause is not None:
            report_dependency_failure(report.cause, report.failing or "unknown")
        if not report.healthy:
            logger.warning("health check failed", extra={"failing": report.failing})
        return report

    return services.health_cache.get(compute)
