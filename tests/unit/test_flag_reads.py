"""The in-service flag's cache keeps a fleet of busy containers under Parameter Store's quota.

Counted through the real ``refuse_unless_accepting`` on a simulated clock (``bench.flag_reads``);
a count of calls, not a timing.
"""

from __future__ import annotations

from bench.flag_reads import BASELINE_CACHE_SECONDS, PARAMETER_STORE_TPS, simulate
from chalicelib.failover_numbers import FLAG_CACHE_SECONDS, LOCAL_FLAG_CACHE_SECONDS
from chalicelib.settings import Settings


def test_a_thousand_busy_containers_read_the_flag_under_the_quota_and_none_is_throttled() -> None:
    ours = simulate(1000, FLAG_CACHE_SECONDS, seconds=240)
    baseline = simulate(1000, BASELINE_CACHE_SECONDS, seconds=240)

    assert ours["peak"] <= PARAMETER_STORE_TPS and ours["throttled"] == 0
    assert baseline["throttled"] > 0.5  # the 5 s it was: most reads throttled


def test_functions_keep_the_deployed_cache_time_unless_the_local_environment_sets_its_own() -> None:
    deployed = Settings.from_environment({"AWS_REGION": "us-east-1"})
    local = Settings.from_environment({"AWS_REGION": "us-east-1", "FLAG_CACHE_SECONDS": "5"})

    assert deployed.flag_cache_seconds == FLAG_CACHE_SECONDS
    assert local.flag_cache_seconds == LOCAL_FLAG_CACHE_SECONDS
