"""Every number that decides failover and failback, in one place.

The stacks build the alarms and health checks from these, the runtime caches the in-service flag
and `/health` by them, the local environment evaluates the canary's alarm by them, and the drill
and ``payments-dr`` wait by them: changing one changes it everywhere. A leaf module (it imports
nothing of the project), so every layer may import it. What each number means for a failover's
timeline is in docs/disaster-recovery.md.
"""

from __future__ import annotations

from typing import NamedTuple

# ------------------------------------------------------------ the alarms that take a region out
# Each region's own trigger alarms (stacks.monitoring): one-minute periods; API 5XX and Lambda
# errors must be sustained (2 of 3 minutes) so that one bad minute does not move traffic.
ALARM_PERIOD_SECONDS = 60
API_5XX_THRESHOLD = 10
LAMBDA_ERRORS_THRESHOLD = 5
DYNAMODB_THROTTLES_THRESHOLD = 10
SUSTAINED_PERIODS = 3
SUSTAINED_DATAPOINTS = 2
# Alarms that page people and never move traffic: at the first dead-lettered payment, the first
# failed control-plane invocation, the first call AWS refused for good; replication lagging a
# minute on average for 3 minutes.
DLQ_MESSAGES_THRESHOLD = 1
CONTROL_FAILURES_THRESHOLD = 1
MISCONFIGURED_CALLS_THRESHOLD = 1
REPLICATION_LATENCY_THRESHOLD_MS = 60_000
REPLICATION_LATENCY_PERIODS = 3


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
