"""The observer's canary: a real payment through the peer region's public API, then its read.

Each region runs it against the *other* region, so whether a region takes payments is judged
from outside it: the canary's metrics, the alarm on them and Route 53's decision all live in
the observer's region, and nothing in the failing region is on that path. A gray failure (the
peer's ``/health`` answers 200 while payments fail) shows here and nowhere else.

Canary payments are real payments of one synthetic customer, :data:`CANARY_CUSTOMER`, with
transaction ids starting ``canary-``: business reports leave that customer out. The probe is pure
Python over an injected HTTP call, so it is tested without a network.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any, NamedTuple

from chalicelib.failover_numbers import CANARY
from chalicelib.metrics import CANARY_TARGET_DIMENSION, METRICS_NAMESPACE, SERVICE_DIMENSION, Metric
from chalicelib.names import SERVICE_NAME, ResourceNames
from chalicelib.schema import REGION_DRAINING_HEADER

CANARY_CUSTOMER = "synthetic-canary"
CANARY_PREFIX = "canary-"
CANARY_AMOUNT = "1.00"
CANARY_CURRENCY = "USD"
# Each step must answer inside this; a payment API slower than that is failing its clients too.
STEP_TIMEOUT_SECONDS = 5.0

# (method, url, headers, body or None, timeout) -> (status, lower-cased headers, JSON body or None)
Http = Callable[[str, str, dict[str, str], bytes | None, float], tuple[int, dict[str, str], Any]]
# Headers reach the probe lower-cased.
DRAINING_HEADER = REGION_DRAINING_HEADER.lower()


class CanaryResult(NamedTuple):
    """One probe of a region: did a payment go through and read back, and how long it took."""

    target_region: str
    success: bool
    latency_ms: float
    failed_step: str | None = None
    status: int | None = None
    draining: bool = False

    def to_json(self) -> dict[str, Any]:
        return self._asdict()


def probe(
    target_region: str,
    api_url: str,
    api_key: str,
    *,
    http: Http,
    clock: Callable[[], float] = time.perf_counter,
    new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
) -> CanaryResult:
    """``POST /process`` a synthetic payment in ``target_region``, then ``GET`` it back."""
    transaction_id = f"{CANARY_PREFIX}{new_id()}"
    headers = {"Content-Type": "application/json", "x-api-key": api_key}
    base = api_url.rstrip("/")
    started = clock()

    def result(
        success: bool, step: str | None = None, status: int | None = None, draining: bool = False
    ) -> CanaryResult:
        return CanaryResult(target_region, success, (clock() - started) * 1000, step, status, draining)

    body = {
        "transaction_id": transaction_id,
        "customer_id": CANARY_CUSTOMER,
        "amount": CANARY_AMOUNT,
        "currency": CANARY_CURRENCY,
    }
    status, answer_headers, _ = http(
        "POST", f"{base}/process", headers, json.dumps(body).encode(), STEP_TIMEOUT_SECONDS
    )
    if status == 503 and answer_headers.get(DRAINING_HEADER) == "true":
        return result(True, status=status, draining=True)
    if status not in (200, 201):
        return result(False, "process", status)
    status, _, stored = http("GET", f"{base}/payments/{transaction_id}", headers, None, STEP_TIMEOUT_SECONDS)
    if status != 200 or not isinstance(stored, dict) or stored.get("transaction_id") != transaction_id:
        return result(False, "read", status)
    return result(True)


def canary_dimensions(target_region: str) -> list[dict[str, str]]:
    """The dimensions of the canary's metrics against ``target_region`` (Powertools adds ``service``)."""
    return [
        {"Name": SERVICE_DIMENSION, "Value": SERVICE_NAME},
        {"Name": CANARY_TARGET_DIMENSION, "Value": target_region},
    ]


def canary_alarm_definition(names: ResourceNames, target_region: str, actions: list[str]) -> dict[str, Any]:
    """``PutMetricAlarm`` arguments of the alarm on the canary against ``target_region``.

    It lives in the observer's region (the peer of ``target_region``), which is where the canary
    writes its metrics and where Route 53 reads it; ``actions`` are the observer's topics to notify.
    The stack creates it and the local environment provisions it from this one definition.
    """
    return {
        "AlarmName": names.canary_alarm(target_region),
        "AlarmDescription": f"The canary's payments through {target_region}'s API fail: Route 53 moves clients away.",
        "Namespace": METRICS_NAMESPACE,
        "MetricName": Metric.CANARY_SUCCESS,
        "Dimensions": canary_dimensions(target_region),
        "Statistic": CANARY.statistic,
        "Period": CANARY.period_seconds,
        "EvaluationPeriods": CANARY.evaluation_periods,
        "DatapointsToAlarm": CANARY.datapoints_to_alarm,
        "Threshold": CANARY.threshold,
        "ComparisonOperator": CANARY.comparison,
        # No data means the observer is not running, not that the target fails: keep the state.
        "TreatMissingData": CANARY.treat_missing_data,
        "AlarmActions": actions,
        "OKActions": actions,
    }


def urllib_http(
    method: str, url: str, headers: dict[str, str], body: bytes | None, timeout: float
) -> tuple[int, dict[str, str], Any]:
    """:data:`Http` on the standard library: status 0 when the region does not answer at all."""
    # Imported here, by the canary alone: every function imports this module (for the peer API
    # port), and urllib.request with http.client costs a cold start about 20 ms.
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, _lower(response.headers), _json(response.read())
    except urllib.error.HTTPError as error:
        return error.code, _lower(error.headers), _json(error.read())
    except (urllib.error.URLError, TimeoutError, OSError):
        return 0, {}, None


def _lower(headers: Any) -> dict[str, str]:
    return {str(name).lower(): str(value) for name, value in (headers or {}).items()}


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None
