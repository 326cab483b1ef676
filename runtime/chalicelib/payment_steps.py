"""The two steps every payment takes, in whichever function takes it: validated, then processed.

The API function takes them for ``/validate`` (the first) and ``/process`` (both), the processor
function for each queued payment (both): each step counts its outcome (embedded metric format)
and logs it the same way wherever it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.errors import PaymentError
from chalicelib.metrics import Metric
from chalicelib.observability import count, logger
from chalicelib.payments import PaymentRequest, validate_payment
from chalicelib.ports import PaymentRepository
from chalicelib.processing import ProcessingOutcome, process_payment
from chalicelib.schema import SYNTHETIC_CLIENTS


def validated(document: Any) -> PaymentRequest:
    """The payment in ``document``, or :class:`PaymentError` naming every problem; counted either way."""
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


def processed(
    payment: PaymentRequest,
    *,
    client: str,
    repository: PaymentRepository,
    region: str,
    on_stored: Callable[[ProcessingOutcome], None] | None = None,
) -> ProcessingOutcome:
    """Record ``client``'s ``payment`` exactly once; counted as processed or as a duplicate."""
    outcome = process_payment(
        payment, client=client, repository=repository, region=region, on_stored=on_stored
    )
    # A synthetic client's payments are probes (the canary counts them as CanarySuccess): they are
    # not merchants' traffic, which PaymentProcessed measures region by region.
    if client not in SYNTHETIC_CLIENTS:
        count(Metric.PROCESSED if outcome.created else Metric.DUPLICATE)
    logger.info(
        "payment processed" if outcome.created else "payment already processed",
        extra={"transaction_id": payment.transaction_id, "new_payment": outcome.created},
    )
    return outcome
