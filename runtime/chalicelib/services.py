"""The adapters a handler uses, created once per container on first use and swappable in tests."""

from __future__ import annotations

import time
from contextlib import nullcontext
from functools import partial
from typing import TYPE_CHECKING, NamedTuple

from chalicelib import heap
from chalicelib.names import API_STAGE
from chalicelib.ports import (
    ClientDirectory,
    KeyBindings,
    Notifications,
    OpsNotices,
    PaymentQueue,
    PaymentRepository,
    PeerApi,
    Probes,
    RegionControl,
    SweepLedger,
    WebhookEndpointStore,
    WebhookQueue,
    WebhookSender,
)
from chalicelib.regions import Cached, HealthReport, RegionFlag
from chalicelib.schema import CANARY_CLIENT
from chalicelib.settings import Settings

if TYPE_CHECKING:
    from chalicelib.webhooks import Resolver


class Services(NamedTuple):
    """Everything the handlers need from outside the domain."""

    settings: Settings
    repository: PaymentRepository
    queue: PaymentQueue
    notifications: Notifications
    key_bindings: KeyBindings
    region_control: RegionControl
    probes: Probes
    ops_notices: OpsNotices
    health_cache: Cached[HealthReport]
    flag_cache: Cached[RegionFlag]
    peer_api: PeerApi
    clients: ClientDirectory
    sweeps: SweepLedger
    webhook_endpoints: WebhookEndpointStore
    # Every address a webhook's host answers with: checked before it is registered and delivered to.
    resolve: Resolver
    webhook_queue: WebhookQueue
    webhook_sender: WebhookSender


def build_aws_services(settings: Settings) -> Services:
    """Services backed by AWS in ``settings.region``; no client exists until first used."""
    # botocore is imported only when a handler first needs AWS.
    from chalicelib import adapters, sdk

    client = partial(sdk.make_client, region=settings.region)
    # The canary is a client like any other: its key is read from its secret, in this region.
    canary_key = adapters.SecretsManagerClientKey(
        secret_name=settings.names.client_secret(CANARY_CLIENT), client=partial(client, "secretsmanager")
    )
    resolve = adapters.webhook_resolver(local_stage=settings.local_stage)
    return Services(
        settings=settings,
        repository=adapters.DynamoPaymentRepository(
            table_name=settings.payments_table, client=partial(client, "dynamodb")
        ),
        queue=adapters.SqsPaymentQueue(queue_url=settings.payment_queue_url, client=partial(client, "sqs")),
        notifications=adapters.SnsNotifications(
            topic_arn=settings.transaction_topic_arn, client=partial(client, "sns")
        ),
        key_bindings=adapters.DynamoKeyBindings(
            table_name=settings.idempotency_table, client=partial(client, "dynamodb")
        ),
        region_control=adapters.SsmRegionControl(
            parameter=settings.names.in_service_parameter, client=partial(sdk.make_client, "ssm")
        ),
        probes=adapters.DependencyProbes(
            table_name=settings.payments_table,
            queue_url=settings.payment_queue_url,
            client=partial(sdk.make_probe_client, region=settings.region),
            # The same flag the orchestrator writes, read with the probes' one-attempt budget.
            flag=adapters.SsmRegionControl(
                parameter=settings.names.in_service_parameter, client=partial(sdk.make_probe_client, "ssm")
            ),
            region=settings.region,
        ),
        ops_notices=adapters.SnsOpsNotices(
            topic_arn=settings.ops_alert_topic_arn, client=partial(client, "sns")
        ),
        health_cache=Cached(time.monotonic),
        flag_cache=Cached(time.monotonic, ttl=settings.flag_cache_seconds),
        peer_api=adapters.StaticPeerApi(settings.peer_api_url, canary_key)
        if settings.peer_api_url
        else adapters.ApiGatewayPeerApi(
            region=settings.peer_region,
            rest_api_name=settings.names.rest_api,
            stage=API_STAGE,
            client=partial(sdk.make_client, "apigateway", region=settings.peer_region),
            api_key=canary_key,
        ),
        clients=adapters.DynamoClientDirectory(
            table_name=settings.clients_table, client=partial(client, "dynamodb")
        ),
        sweeps=adapters.SsmSweepLedger(
            parameter=settings.names.orphan_sweep_parameter, client=partial(client, "ssm")
        ),
        webhook_endpoints=adapters.DynamoWebhookEndpoints(
            table_name=settings.webhook_endpoints_table, client=partial(client, "dynamodb")
        ),
        resolve=resolve,
        webhook_queue=adapters.SqsWebhookQueue(
            queue_url=settings.webhook_queue_url,
            dlq_url=settings.webhook_dlq_url,
            client=partial(client, "sqs"),
        ),
        webhook_sender=adapters.HttpWebhookSender(resolve=resolve, allow_loopback=settings.local_stage),
    )


_services: Services | None = None
_heap_frozen = False


def get_services() -> Services:
    """The container's services, built from the environment on first call.

    The first build imports botocore and creates its session, which live as long as the
    container: the collector is paused while it runs and the result frozen (``chalicelib.heap``).
    """
    global _services, _heap_frozen
    if _services is None:
        with nullcontext() if _heap_frozen else heap.building_long_lived():
            _services = build_aws_services(Settings.from_environment())
        _heap_frozen = True
    return _services


def use_services(services: Services | None) -> None:
    """Replace the container's services (tests), or forget them so the next call rebuilds."""
    global _services
    _services = services
