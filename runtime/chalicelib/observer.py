"""The observer's use cases: the canary through the peer region's API, as metrics here; and, once
the peer is lost, the announcements of what it stored and never made."""

from __future__ import annotations

import time
from collections.abc import Callable

from chalicelib.canary import CANARY_CUSTOMER, CanaryResult, Http, probe, urllib_http
from chalicelib.errors import (
    DependencyUnavailable,
)
from chalicelib.failover_numbers import CANARY, ORPHAN_SWEEP_SECONDS_PER_RUN
from chalicelib.metrics import CANARY_TARGET_DIMENSION
from chalicelib.observability import (
    Metric,
    add_dimension,
    count,
    logger,
    milliseconds,
    report_dependency_failure,
)
from chalicelib.orphans import Sweep, sweep_to_run
from chalicelib.payments import stored_at
from chalicelib.processing import Clock, epoch_millis
from chalicelib.schema import CANARY_CLIENT
from chalicelib.services import Services


def announce_what_a_lost_peer_left(
    services: Services,
    *,
    now: Callable[[], float] = time.time,
    monotonic: Callable[[], float] = time.monotonic,
) -> Sweep | None:
    """The survivor's part of a region's loss: announce what the peer stored and may never have said.

    Runs after the canary, each minute. Nothing happens until the peer has been out of service for
    the bound (:mod:`chalicelib.orphans`); then this region's table is swept, for
    ``ORPHAN_SWEEP_SECONDS_PER_RUN`` a run, for the payments and rejections the peer stored from the
    lookback before it went out, and each is announced with its own event id. Returns the sweep as
    saved (None when none ran). Never raises, as the canary never does.
    """
    peer = services.settings.peer_region
    try:
        due = sweep_to_run(services.region_control.flag(peer), services.sweeps.read(), now())
        if due is None:
            return None
        sweep, since_ms = due
        deadline = monotonic() + ORPHAN_SWEEP_SECONDS_PER_RUN
        cursor, announced = sweep.cursor, sweep.announced
        while True:
            page, following = services.repository.stored_by(peer, cursor)
            found = [item for item in page if stored_at(item) >= since_ms]
            if found and services.notifications.announce(found):
                break  # not all published: this page again on the next run, the same ids
            announced, cursor = announced + len(found), following
            if cursor is None or monotonic() >= deadline:
                break
        saved = Sweep(sweep.outage, cursor, done=cursor is None, announced=announced)
        services.sweeps.save(saved)
    except DependencyUnavailable as error:
        report_dependency_failure(error, "orphan sweep")
        return None
    count(Metric.ORPHANS_ANNOUNCED, announced - sweep.announced)
    logger.warning(
        "announced what the lost peer left",
        extra={"peer_region": peer, "announced": announced, "done": saved.done, "outage": saved.outage},
    )
    return saved


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
