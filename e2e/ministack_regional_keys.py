"""MiniStack with API keys looked up in the request's region, as API Gateway's are.

Run by :class:`e2e.emulator.Emulator` with the emulator's own interpreter, as a script (it
imports nothing of this repository). MiniStack 1.5.33 resolves an ``x-api-key`` value against
the keys of every region and takes the first it finds: with one value in both regions (one key
per client, the service's design) a request to the second region meets the first region's key,
which is in no usage plan of that API, and is refused. API Gateway's keys are regional; this
looks the value up among the keys of the region that owns the API, and leaves the rest as it is.
``make e2e`` reports it among the emulator's gaps.
"""

from __future__ import annotations

from typing import Any

from ministack.services import apigateway_v1


def _resolve_api_key_in_request_region(value: Any) -> Any:
    """The enabled key of this request's account and region whose value matches, or None."""
    if not value:
        return None
    for key_id in list(apigateway_v1._api_keys):  # scoped to the request's account and region
        key = apigateway_v1._api_keys.get(key_id)
        if key and key.get("value") == value and key.get("enabled", True):
            return key
    return None


apigateway_v1._resolve_api_key = _resolve_api_key_in_request_region

if __name__ == "__main__":
    from ministack.app import main

    main()
