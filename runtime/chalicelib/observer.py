"""The observer's use case: the canary through the peer region's API, as metrics here."""

from __future__ import annotations

from chalicelib.canary import CANARY_CUSTOMER, CanaryResult, Http, probe, urllib_http
from chalicelib.errors import (
    DependencyUnavailable,
)
from chalicelib.failover_numbers import CANARY
from chalicelib.metrics import CANARY_TARGET_DIMENSION
from chalicelib.observability import (
    Metric,
    add_dimension,
    count,
    logger,
    milliseconds,
    report_dependency_failure,
)
from chalicelib.processing import Clock, epoch_millis
from chalicelib.schema import CANARY_CLIENT
from chalicelib.services import Services


def run_canary(services: Services, http: Http | None = None, *, clock: Clock = epoch_millis) -> CanaryResult:
    """The observer: probe the peer region's payment path once and record the result as metrics.

    Then removes the canary's payments older than a few minutes (both directions' probes: they
    are one client's, in one global table), so its payments stay probes and never become data.
    Never raises: a canary that errors would count as this region's function errors, a failover
    trigger, when it is the peer that fails.
    """
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
