"""API Gateway's API-key check, for where no API Gateway stands in front of the app.

Deployed, API Gateway refuses a request to a route with ``api_key_required`` before Lambda runs
(403, ``{"message": "Forbidden"}``) unless it carries the value of an enabled key in a usage plan
of the stage. ``chalice local`` serves the same routes with no gateway and does not enforce it,
so under ``make run`` (``LOCAL_API_GATEWAY`` set) the app applies the same rule itself, against
the client keys that this region's API Gateway holds in the local AWS: the keys
``payments-dr --local clients`` creates, rotates and revokes, exactly as it does deployed. In AWS
that variable is never set and this check never runs.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from chalicelib.regions import Cached

API_KEY_HEADER = "x-api-key"
FORBIDDEN_BODY = {"message": "Forbidden"}
# A revoked key is refused within this long (API Gateway's own cache takes up to a few seconds).
KEY_RING_SECONDS = 1.0


def admits(*, key_required: bool, presented: str | None, allowed: Mapping[str, str]) -> bool:
    """Whether API Gateway would let this request through to the function."""
    return not key_required or (presented is not None and presented in allowed)


def admit(
    *,
    routes: Mapping[str, Mapping[str, Any]],
    method: str,
    context: dict[str, Any],
    headers: Mapping[str, str],
    allowed: Mapping[str, str],
) -> bool:
    """Apply API Gateway's check to one request of the app's ``routes``.

    ``allowed`` maps each accepted key value to its key's id. An admitted request that carried a
    key gets the key's id in ``context["identity"]``, where API Gateway puts it, so the handlers
    see the caller the same way locally and deployed.
    """
    route = routes.get(context.get("resourcePath", ""), {}).get(method)
    presented = headers.get(API_KEY_HEADER)
    if not admits(key_required=bool(route and route.api_key_required), presented=presented, allowed=allowed):
        return False
    if presented and presented in allowed:
        context.setdefault("identity", {})["apiKeyId"] = allowed[presented]
    return True


class LocalKeyRing:
    """The client keys API Gateway would accept in one region: enabled, named as clients' keys, in a plan.

    Read from the local AWS's API Gateway (``AWS_ENDPOINT_URL``) at most every ``ttl`` seconds.
    When the local AWS does not answer, the keys last read stand: API Gateway is a service of its
    own, and a fault of the data plane (DynamoDB, SQS) must show as the app's 503, not as a 403.
    """

    def __init__(
        self,
        *,
        region: str,
        prefix: str,
        ttl: float = KEY_RING_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._region = region
        self._prefix = prefix
        self._lock = threading.Lock()
        self._keys: Cached[dict[str, str]] = Cached(clock, ttl)
        self._last: dict[str, str] = {}
        self._apigateway: Any = None

    def __call__(self) -> Mapping[str, str]:
        with self._lock:
            return self._keys.get(self._read)

    def _read(self) -> dict[str, str]:
        # Local only: boto3 with botocore's full API data, which the functions do not ship.
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        if self._apigateway is None:
            self._apigateway = boto3.client("apigateway", region_name=self._region)
        apigateway = self._apigateway
        try:
            keys = apigateway.get_api_keys(nameQuery=self._prefix, includeValues=True, limit=500)["items"]
            in_plans = {
                key["id"]
                for plan in apigateway.get_usage_plans(limit=500)["items"]
                if str(plan.get("name", "")).startswith(self._prefix)
                for key in apigateway.get_usage_plan_keys(usagePlanId=plan["id"], limit=500)["items"]
            }
        except (BotoCoreError, ClientError):
            return self._last
        self._last = {
            key["value"]: key["id"]
            for key in keys
            if key.get("enabled")
            and str(key.get("name", "")).startswith(self._prefix)
            and key["id"] in in_plans
        }
        return self._last


@functools.cache
def key_ring(region: str, prefix: str) -> LocalKeyRing:
    """This process's key ring of ``region`` (one per process, like the gateway's own cache)."""
    return LocalKeyRing(region=region, prefix=prefix)
