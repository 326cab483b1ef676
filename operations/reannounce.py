"""Announcing again, from the payments table, what a region stored in a time range.

The notifier announces each payment and rejection once, from the table's stream; the stream
keeps a change 24 hours. When announcements were given up on (the notification DLQ, the
``PaymentAnnounceFailed`` alarm), or a region was lost before its stream ran, the table still
holds every payment: ``payments-dr reannounce`` reads the claims and rejections stored in the range
(in any region's name: a survivor holds the lost region's too) and publishes them again on the
region's transactions topic, each with the event id it had the first time
(:func:`chalicelib.outbox.event_id`), so a subscriber that saw it drops the copy. The canary's
synthetic payments, which name no announcing region, are never announced.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from chalicelib.adapters.messages import SnsNotifications
from chalicelib.items import ANNOUNCED_BY, announced_from_attributes
from chalicelib.payments import Announced, stored_at
from operations.targets import Target


@dataclass(frozen=True)
class ReannounceReport:
    """What a re-announcement found in the range and what it published."""

    region: str
    found: int
    published: int
    failed: int
    dry_run: bool

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def summary(self) -> str:
        if self.dry_run:
            return f"{self.region}: {self.found} payment(s) and rejection(s) in the range; dry run, nothing published"
        return (
            f"{self.region}: published {self.published} of {self.found} again (same event ids), "
            f"{self.failed} failed" + (": run it again" if self.failed else "")
        )


def announced_items(target: Target, region: str, *, since_ms: int, until_ms: int) -> Iterator[Announced]:
    """Every announced item ``region``'s payments table holds that was stored in [since, until)."""
    pages = target.client("dynamodb", region).get_paginator("scan")
    for page in pages.paginate(
        TableName=target.names.payments_table,
        ConsistentRead=True,
        FilterExpression="attribute_exists(#announced)",
        ExpressionAttributeNames={"#announced": ANNOUNCED_BY},
    ):
        for attributes in page.get("Items", []):
            item = announced_from_attributes(attributes)
            if since_ms <= stored_at(item) < until_ms:
                yield item


def transaction_topic_arn(target: Target, region: str) -> str:
    """The ARN of ``region``'s transactions topic, found by its name."""
    name = target.names.transaction_topic
    for page in target.client("sns", region).get_paginator("list_topics").paginate():
        for topic in page.get("Topics", []):
            if str(topic["TopicArn"]).rsplit(":", 1)[-1] == name:
                return str(topic["TopicArn"])
    raise LookupError(f"no topic {name} in {region}")


def reannounce(
    target: Target, region: str, *, since_ms: int, until_ms: int, dry_run: bool = False
) -> ReannounceReport:
    """Publish again on ``region``'s transactions topic what its table stored in [since, until)."""
    items = list(announced_items(target, region, since_ms=since_ms, until_ms=until_ms))
    if dry_run or not items:
        return ReannounceReport(region, len(items), 0, 0, dry_run)
    topic = SnsNotifications(
        topic_arn=transaction_topic_arn(target, region), client=lambda: target.client("sns", region)
    )
    failed = topic.announce(items)
    return ReannounceReport(region, len(items), len(items) - len(failed), len(failed), dry_run)
