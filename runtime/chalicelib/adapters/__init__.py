"""The AWS adapters of the payment ports, one file per family, handed on by name.

- :mod:`~chalicelib.adapters.payments_table`: ``DynamoPaymentRepository``, the payments table;
- :mod:`~chalicelib.adapters.key_bindings`: ``DynamoKeyBindings``, the payment routes'
  Idempotency-Key bindings in the idempotency table;
- :mod:`~chalicelib.adapters.region_flag`: ``SsmRegionControl`` (the in-service flag),
  ``DependencyProbes`` (``/health``) and ``SsmSweepLedger`` (the observer's sweep of a lost peer);
- :mod:`~chalicelib.adapters.messages`: ``SqsPaymentQueue``, ``SnsNotifications`` (the transactions
  topic) and ``SnsOpsNotices`` (the ops-alert topic);
- :mod:`~chalicelib.adapters.clients`: ``DynamoClientDirectory`` (key id -> client) and
  ``SecretsManagerClientKey`` (a client's own key value);
- :mod:`~chalicelib.adapters.peer_api`: ``ApiGatewayPeerApi`` and ``StaticPeerApi``, where the
  canary finds the peer region's API;
- :mod:`~chalicelib.adapters.webhook_endpoints`: ``DynamoWebhookEndpoints``, merchants' webhook
  endpoints; :mod:`~chalicelib.adapters.webhook_sender`: ``HttpWebhookSender``, one delivery to
  an address checked just before.

Each reaches AWS through :mod:`chalicelib.sdk`; what still fails after botocore's retries surfaces
as :class:`~chalicelib.errors.DependencyUnavailable`, so the caller answers 503 or leaves the
message on the queue. A name is imported from its file on first use: the operator's CLI, which
needs the flag alone, loads that file and no other.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chalicelib.adapters.clients import DynamoClientDirectory, SecretsManagerClientKey
    from chalicelib.adapters.key_bindings import DynamoKeyBindings
    from chalicelib.adapters.messages import SnsNotifications, SnsOpsNotices, SqsPaymentQueue, SqsWebhookQueue
    from chalicelib.adapters.payments_table import DynamoPaymentRepository
    from chalicelib.adapters.peer_api import ApiGatewayPeerApi, StaticPeerApi
    from chalicelib.adapters.region_flag import DependencyProbes, SsmRegionControl, SsmSweepLedger
    from chalicelib.adapters.webhook_endpoints import DynamoWebhookEndpoints
    from chalicelib.adapters.webhook_sender import HttpWebhookSender, webhook_resolver

_HOMES = {
    "DynamoPaymentRepository": "payments_table",
    "DynamoKeyBindings": "key_bindings",
    "SsmRegionControl": "region_flag",
    "DependencyProbes": "region_flag",
    "SsmSweepLedger": "region_flag",
    "SqsPaymentQueue": "messages",
    "SnsNotifications": "messages",
    "SnsOpsNotices": "messages",
    "SqsWebhookQueue": "messages",
    "DynamoClientDirectory": "clients",
    "SecretsManagerClientKey": "clients",
    "ApiGatewayPeerApi": "peer_api",
    "StaticPeerApi": "peer_api",
    "DynamoWebhookEndpoints": "webhook_endpoints",
    "HttpWebhookSender": "webhook_sender",
    "webhook_resolver": "webhook_sender",
}

__all__ = [
    "ApiGatewayPeerApi",
    "DependencyProbes",
    "DynamoClientDirectory",
    "DynamoKeyBindings",
    "DynamoPaymentRepository",
    "DynamoWebhookEndpoints",
    "HttpWebhookSender",
    "SecretsManagerClientKey",
    "SnsNotifications",
    "SnsOpsNotices",
    "SqsPaymentQueue",
    "SqsWebhookQueue",
    "SsmRegionControl",
    "SsmSweepLedger",
    "StaticPeerApi",
    "webhook_resolver",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
