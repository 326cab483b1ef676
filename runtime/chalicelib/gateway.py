"""API Gateway's API-key check, for where no API Gateway stands in front of the app.

Deployed, API Gateway refuses a request to a route with ``api_key_required`` before Lambda runs
(403, ``{"message": "Forbidden"}``) unless it carries an ``x-api-key`` of the stage's usage plan.
``chalice local`` serves the same routes with no gateway and does not enforce it, so the local
environment lists its keys in ``LOCAL_API_KEYS`` and the app applies the same rule itself. In
AWS that variable is never set and this check never runs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection

API_KEY_HEADER = "x-api-key"
FORBIDDEN_BODY = {"message": "Forbidden"}


def admits(*, key_required: bool, presented: str | None, allowed: Collection[str]) -> bool:
    """Whether API Gateway would let this request through to the function."""
    return not key_required or (presented is not None and presented in allowed)


def key_id(api_key: str) -> str:
    """A stable id for a local API key, like API Gateway's ``apiKeyId`` (never the key itself)."""
    return "local-" + hashlib.sha256(api_key.encode()).hexdigest()[:12]
