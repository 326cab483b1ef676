"""The adapters a handler uses, created once per container on first use and swappable in tests."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from chalicelib.idempotency import IdempotentRequests
from chalicelib.processing import Notifications, PaymentQueue, PaymentRepository
from chalicelib.settings import Settings


@dataclass(frozen=True)
class Services:
    """Everything the handlers need from outside the domain."""

    settings: Settings
    repository: PaymentRepository
    queue: PaymentQueue
    notifications: Notifications
    idempotency: IdempotentRequests


def build_aws_services(settings: Settings) -> Services:
    """Services backed by AWS in ``settings.region``; no client exists until first used."""
    from chalicelib import aws  # botocore is imported only when a handler first needs AWS

    client = partial(aws.make_client, region=settings.region)
    return Services(
        settings=settings,
        repository=aws.DynamoPaymentRepository(
            table_name=settings.payments_table, client=partial(client, "dynamodb")
        ),
        queue=aws.SqsPaymentQueue(queue_url=settings.payment_queue_url, client=partial(client, "sqs")),
        notifications=aws.SnsNotifications(
            topic_arn=settings.transaction_topic_arn, client=partial(client, "sns")
        ),
        idempotency=IdempotentRequests(
            partial(aws.idempotency_persistence, table_name=settings.idempotency_table, client=partial(client, "dynamodb"))
        ),
    )


_services: Services | None = None


def get_services() -> Services:
    """The container's services, built from the environment on first call."""
    global _services
    if _services is None:
        _services = build_aws_services(Settings.from_environment())
    return _services


def use_services(services: Services | None) -> None:
    """Replace the container's services (tests), or forget them so the next call rebuilds."""
    global _services
    _services = services
