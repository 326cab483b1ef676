"""Every number that decides failover and failback, in one place.

The stacks build the alarms and health checks from these, the runtime caches the in-service flag
and `/health` by them, the local environment evaluates the canary's alarm by them, and the drill
and ``payments-dr`` wait by them: changing one changes it everywhere. Nearly a leaf (it imports
only the metric names its alarms read), so every layer may import it. What each number means for
a failover's timeline is in docs/disaster-recovery.md.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

from chalicelib.metrics import CANARY_TARGET_DIMENSION, METRICS_NAMESPACE, Metric

# ------------------------------------------------------------ the alarms that take a region out
ALARM_PERIOD_SECONDS = 60


class AlarmRule(NamedTuple):
    """When one of a region's alarms fires.

    ``threshold`` or more in ``datapoints_to_alarm`` of the last ``evaluation_periods`` periods of
    :data:`ALARM_PERIOD_SECONDS` (``datapoints_to_alarm`` None: in every one of them).
    """

    threshold: int
    evaluation_periods: int = 1
    datapoints_to_alarm: int | None = None

    @property
    def sustained(self) -> bool:
        """Whether one breaching period alone is not enough."""
        return self.evaluation_periods > 1

    def window(self) -> str:
        """How long the breach must last, in words: "" for a single period, " in 2 of 3 minutes"."""
        if not self.sustained:
            return ""
        needed = self.datapoints_to_alarm or self.evaluation_periods
        return f" in {needed} of {self.evaluation_periods} minutes"


# Each region's own trigger alarms (stacks.monitoring; chalicelib.failover.trigger_alarms). API
# 5XX answers fire in a single minute: clients are failing now. Function errors and throttled
# table requests must last 2 of 3 minutes, so one slow deploy or a burst absorbed by retries does
# not move traffic.
API_5XX = AlarmRule(threshold=10)
LAMBDA_ERRORS = AlarmRule(threshold=5, evaluation_periods=3, datapoints_to_alarm=2)
DYNAMODB_THROTTLES = AlarmRule(threshold=10, evaluation_periods=3, datapoints_to_alarm=2)
# Alarms that page people and never move traffic: at the first dead-lettered payment, the first
# failed control-plane invocation, the first call AWS refused for good; replication lagging a
# minute on average for 3 minutes.
DLQ_MESSAGES = AlarmRule(threshold=1)
# An announcement given up on: the first publish that failed, and the first stream position parked
# in the notification dead-letter queue (the table's stream keeps it 24 h, then it is gone).
ANNOUNCE_FAILED = AlarmRule(threshold=1)
NOTIFICATION_DLQ_MESSAGES = AlarmRule(threshold=1)
CONTROL_FAILURES = AlarmRule(threshold=1)
MISCONFIGURED_CALLS = AlarmRule(threshold=1)
REPLICATION_LATENCY_MS = AlarmRule(threshold=60_000, evaluation_periods=3)
# Merchants' webhooks: a delivery whose 3 days of retries ran out; an event undelivered an hour.
WEBHOOK_DLQ_MESSAGES = AlarmRule(threshold=1)
WEBHOOK_BACKLOG_SECONDS = AlarmRule(threshold=3600)


class CanarySettings(NamedTuple):
    """How often the observer probes its peer, and when that counts as the peer failing."""

    rate_minutes: int = 1
    # The peer is failing when 2 of the last 3 one-minute probes failed: one lost request is
    # not an outage, two in three minutes is.
    period_seconds: int = 60
    evaluation_periods: int = 3
    datapoints_to_alarm: int = 2
    # Failback waits until the canary against the returning region has passed this long.
    failback_passing_seconds: int = 600
    # The canary's payments are synthetic: each run removes those older than this (time enough to
    # read one back and for its replica to arrive), so the table holds minutes of them, not years.
    payments_kept_seconds: int = 600
    # At most this many of them removed per run (one index query): far more than a run makes.
    payments_removed_per_run: int = 25
    # The alarm's rule: a period whose lowest CanarySuccess is under 1 had a failed probe; no
    # data means the observer is not running, not that its target fails.
    statistic: str = "Minimum"
    threshold: float = 1
    comparison: str = "LessThanThreshold"
    treat_missing_data: str = "missing"


CANARY = CanarySettings()

# ------------------------------------------------------------------------------ Route 53
# Each region's /health is checked every 30 s; an endpoint changes state after 3 results in a row.
HEALTH_CHECK_INTERVAL_SECONDS = 30
HEALTH_CHECK_FAILURE_THRESHOLD = 3
# The record follows /health AND the peer's canary alarm: both children must be healthy.
DECISION_HEALTHY_CHILDREN = 2
# The alarm on Route 53's own view of /health (notifies ops-alerts): one failing minute.
HEALTH_CHECK_ALARM_PERIODS = 1

# ------------------------------------------------------------------- what the functions cache
# Route 53 checkers call /health every 30 s from many locations; a few seconds of cache keeps
# that to a handful of dependency reads per container while still reacting within one interval.
HEALTH_CACHE_SECONDS = 5.0
# How long a function keeps the flag it read before taking a payment: a drain reaches every
# container within this time (a switchover waits it out). Each busy container reads the flag once
# per this time, and Parameter Store serves 40 reads a second per account and region: at 60 s a
# thousand containers read about 17 a second (at 5 s, 200: throttled; `make bench`). What it
# costs is a switchover that waits a minute; failover is unaffected (/health reads the flag on
# its own 5 s cache, for Route 53's checkers alone).
FLAG_CACHE_SECONDS = 60.0
# The local environment runs two containers, not a fleet: its switchovers need not wait a minute.
LOCAL_FLAG_CACHE_SECONDS = 5.0

# ------------------------------------------------------------------------- a request in flight
# No payment request holds anything while it runs: an Idempotency-Key is bound after its work
# (chalicelib.idempotency) and the payment's claim decides that it is made once, so a request whose
# function dies (its region lost, its configuration replaced) blocks no retry, in either region,
# for any time at all: the longest a retry is blocked by a request in flight is 0 s (the checker,
# tests/checker, measures it). What bounds one request is its AWS calls, each made with these
# timeouts and attempts (chalicelib.sdk.CLIENT_CONFIG):
PAYMENT_CALL_CONNECT_TIMEOUT_SECONDS = 0.5
PAYMENT_CALL_READ_TIMEOUT_SECONDS = 2.0
PAYMENT_CALL_ATTEMPTS = 2
# botocore's standard retry mode waits a random time of up to 1 s before the second attempt.
PAYMENT_CALL_BACKOFF_SECONDS = 1.0
# The longest one call can take before it fails: 6 s, well inside a merchant client's retry budget
# (payments_client.RetryPolicy: 8 attempts of 5 s with waits of up to 5 s), whose attempt that timed
# out is an unknown outcome it retries in place (tests/unit/test_payments_client.py).
PAYMENT_CALL_LONGEST_SECONDS = (
    PAYMENT_CALL_ATTEMPTS * (PAYMENT_CALL_CONNECT_TIMEOUT_SECONDS + PAYMENT_CALL_READ_TIMEOUT_SECONDS)
    + (PAYMENT_CALL_ATTEMPTS - 1) * PAYMENT_CALL_BACKOFF_SECONDS
)

# -------------------------------------------------------- what a lost region stored and never said
# A region announces what it stores from its own table's stream; a payment it stored just before it
# was lost is in the survivor (replicated, or committed there first in strong mode) but may never be
# announced. Once the peer has been out of service this long, the survivor's observer announces,
# with the events' own ids, every payment and rejection the peer stored from ORPHAN_LOOKBACK before
# it went out: longer than the notifier's normal lag (seconds) and than Route 53's failover, so that
# what the peer's notifier could still have sent has been sent, and subscribers deduplicate the rest.
ORPHAN_ANNOUNCE_AFTER_SECONDS = 300
ORPHAN_LOOKBACK_SECONDS = 900
# The sweep reads the survivor's whole table (a Scan: nothing indexes items by the region that stored
# them, and an index would cost every payment a write to serve a disaster); each observer run sweeps
# this long and keeps its place, so a table of any size is swept over as many runs as it takes.
ORPHAN_SWEEP_SECONDS_PER_RUN = 15.0

# ---------------------------------------------------------------- switchover and failback waits
# AWS's evacuation guidance: after writes stop, wait ten times the recent maximum replication
# latency; never less than this, so a quiet metric cannot shorten the wait to nothing.
REPLICATION_SAFETY_FACTOR = 10
MIN_SWITCHOVER_WAIT_SECONDS = 30.0
# "Recent" replication latency: the maximum of the one-minute averages over this window.
REPLICATION_WINDOW_SECONDS = 300
# Failback writes a marker in the region it leaves and waits this long for it in the returning
# one (replication caught up) before it refuses to move clients back.
FAILBACK_MARKER_TIMEOUT_SECONDS = 60


def canary_alarm_digest(canary: CanarySettings | None = None) -> str:
    """Eight hex digits that change whenever the canary alarm's definition does.

    Route 53 copies an alarm's settings when a health check on it is created and never follows
    later changes: the digest in the alarm's name (and the health check's id) makes a changed
    definition a new alarm and a new health check, never a stale copy.
    """
    rule = canary or CANARY
    definition = (
        METRICS_NAMESPACE,
        Metric.CANARY_SUCCESS,
        CANARY_TARGET_DIMENSION,
        rule.statistic,
        rule.period_seconds,
        rule.evaluation_periods,
        rule.datapoints_to_alarm,
        rule.threshold,
        rule.comparison,
        rule.treat_missing_data,
    )
    return hashlib.sha256(repr(definition).encode()).hexdigest()[:8]
