"""API Gateway's API-key check, for where no API Gateway stands in front of the app.

Deployed, API Gateway refuses a request to a route with ``api_key_required`` before Lambda runs
(403, ``{"message": "Forbidden"}``) unless it carries an ``x-api-key`` of the stage's usage plan.
``chalice local`` serves the same routes with no gateway and does not enforce it, so the local
environment lists its keys in ``LOCAL_API_KEYS`` and the app applies the same rule itself. In
AWS that variable is never set and this check never runs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from typing import Any

API_KEY_HEADER = "x-api-key"
FORBIDDEN_BODY = {"message": "Forbidden"}


def admits(*, key_required: bool, presented: str | None, allowed: Collection[str]) -> bool:
    """Whether API Gateway would let this request through to the function."""
    return not key_required or (presented is not None and presented in allowed)


def admit(
    *,
    routes: Mapping[str, Mapping[str, Any]],
    method: str,
    context: dict[str, Any],
    headers: Mapping[str, str],
    allowed: Collection[str],
) -> bool:
    """Apply API Gateway's check to one request of the app's ``routes``.

    An admitted request that carried a key gets the key's id in ``context["identity"]``, where
    API Gateway puts it, so the handlers see the caller the same way locally and deployed.
    """
    route = routes.get(context.get("resourcePath", ""), {}).get(method)
    presented = headers.get(API_KEY_HEADER)
    if not admits(key_required=bool(route and route.api_key_required), presented=presented, allowed=allowed):
        return False
    if presented:
        context.setdefault("identity", {})["apiKeyId"] = key_id(presented)
    return True


def key_id(api_key: str) -> str:
    """A stable id for a local API key, like API Gateway's ``apiKeyId`` (never the key itself)."""
    return "local-" + hashlib.sha256(api_key.encode()).hexdigest()[:12]
