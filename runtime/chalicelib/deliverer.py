"""The webhook deliverer's use case: a batch of the webhook deliveries queue, reporting failures per message.

The queue receives two kinds of message:

- an **announced event**, exactly as the notifier published it on the transactions topic (the
  queue is subscribed to it): it becomes one delivery message per enabled endpoint of that
  event's client (:func:`chalicelib.webhook_delivery.deliveries_for`), queued at once. Each region
  delivers what its own notifier announced: the payments it stored, and after a peer's loss what
  the peer stored and the observer announced for it;
- a **replay job** (:mod:`chalicelib.webhook_replay`): a page of the client's events from the
  payments table becomes one delivery each to the replay's endpoint, queued at once, and the job
  goes back on the queue for its next page;
- a **delivery**: attempted when due; a retry goes back on the queue for its next attempt,
  waiting at most 15 minutes a hop (SQS's longest delay) until it is due; one whose 3 days of
  retries ran out goes to the dead-letter queue.

A merchant's endpoint failing is an answer, never a failure of the function: only a message the
function could not handle (the endpoints table or the queue unreachable) is reported failed, to be
received again. The batch's deliveries run side by side, each waiting at most 5 s.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from chalicelib.errors import DependencyUnavailable
from chalicelib.metrics import METRICS_NAMESPACE, SERVICE_DIMENSION, WEBHOOK_ENDPOINT_DIMENSION, Metric
from chalicelib.names import SERVICE_NAME, WEBHOOK_QUEUE
from chalicelib.observability import count, logger, metrics
from chalicelib.outbox import notification_body
from chalicelib.schema import SYNTHETIC_CLIENTS
from chalicelib.services import Services
from chalicelib.webhook_delivery import Attempted, Delivery, attempt, deliveries_for
from chalicelib.webhook_replay import REPLAY_PAGE_SIZE, ReplayJob, is_replay, superseded
from chalicelib.webhooks import Outcome


def deliver_batch(
    event: dict[str, Any], services: Services, clock: Callable[[], float] = time.time
) -> dict[str, list[dict[str, str]]]:
    """Handle each message of an SQS batch; the ids of those to receive again."""
    records = event.get("Records", [])
    with ThreadPoolExecutor(max_workers=max(1, min(len(records), WEBHOOK_QUEUE.batch_size))) as pool:
        handled = list(pool.map(lambda record: _handled(record, services, clock), records))
    return {
        "batchItemFailures": [
            {"itemIdentifier": record["messageId"]}
            for record, ok in zip(records, handled, strict=True)
            if not ok
        ]
    }


def _handled(record: dict[str, Any], services: Services, clock: Callable[[], float]) -> bool:
    try:
        message = json.loads(record["body"])
    except ValueError:
        logger.warning("webhook message not JSON: dropped")
        return True
    try:
        if is_replay(message):
            _replay_page(ReplayJob.from_message(message), services, clock())
        elif isinstance(message, dict) and "endpoint_id" in message:
            _deliver(Delivery(**message), services, clock())
        elif isinstance(message, dict) and {"id", "event", "client"} <= set(message):
            _fan_out(message, services, clock())
        else:
            logger.warning("webhook message of no known kind: dropped")
    except DependencyUnavailable:
        logger.exception("webhook message not handled: it is received again")
        return False
    return True


def _fan_out(announced: dict[str, Any], services: Services, now: float) -> None:
    client = announced["client"]
    if client in SYNTHETIC_CLIENTS:
        return
    endpoints = services.webhook_endpoints.endpoints_of(client)
    services.webhook_queue.send_all([d.to_json() for d in deliveries_for(announced, endpoints, now=now)])


def _replay_page(job: ReplayJob, services: Services, now: float) -> None:
    endpoint = services.webhook_endpoints.endpoint(job.client, job.endpoint_id)
    if endpoint is None or not endpoint.enabled or superseded(job.replay_id, endpoint.replay_id):
        logger.info(
            "webhook replay stopped: its endpoint is gone, disabled or replaying anew",
            extra={"endpoint_id": job.endpoint_id, "replay_id": job.replay_id},
        )
        return
    events, cursor = services.repository.events_of(
        job.client, since=job.since, until=job.until, cursor=job.cursor, limit=REPLAY_PAGE_SIZE
    )
    deliveries = [
        delivery.to_json()
        for item in events
        for delivery in deliveries_for(notification_body(item), [endpoint], now=now)
    ]
    # The page's deliveries before the job's next page: a crash in between takes this page again.
    services.webhook_queue.send_all(deliveries)
    if cursor is not None:
        services.webhook_queue.send(job._replace(cursor=cursor).to_json())
    logger.info(
        "webhook replay page queued",
        extra={
            "endpoint_id": job.endpoint_id,
            "replay_id": job.replay_id,
            "deliveries": len(deliveries),
            "last_page": cursor is None,
        },
    )


def _deliver(delivery: Delivery, services: Services, now: float) -> None:
    if delivery.due_at > now:  # not yet: another hop of the queue's delay
        services.webhook_queue.send(delivery.to_json(), delay_seconds=math.ceil(delivery.due_at - now))
        return
    done = attempt(
        delivery,
        store=services.webhook_endpoints,
        sender=services.webhook_sender,
        now=now,
        time_scale=services.settings.local_time_scale,
    )
    _count(delivery, done, now)
    if done.retry is not None:
        services.webhook_queue.send(done.retry.to_json(), delay_seconds=int(done.retry.due_at - now))
    elif done.decision.outcome is Outcome.GIVE_UP:
        services.webhook_queue.dead_letter(delivery.to_json())


# The invocation's metrics are one collection; the batch's deliveries count from several threads.
_METRICS_LOCK = threading.Lock()


def _count(delivery: Delivery, done: Attempted, now: float) -> None:
    with _METRICS_LOCK:
        _count_one(delivery, done, now)


def _count_one(delivery: Delivery, done: Attempted, now: float) -> None:
    outcome = done.decision.outcome
    if outcome is Outcome.HELD:
        return
    delivered = outcome is Outcome.DELIVERED
    count(Metric.WEBHOOK_DELIVERED if delivered else Metric.WEBHOOK_FAILED)
    if outcome is Outcome.GIVE_UP:
        count(Metric.WEBHOOK_GIVEN_UP)
    age = now - delivery.first_attempt_at
    # Per endpoint: what its owner and the operator look at (its backlog's age, its failures).
    for name, value, unit in (
        (Metric.WEBHOOK_DELIVERED if delivered else Metric.WEBHOOK_FAILED, 1.0, MetricUnit.Count),
        *(() if delivered else ((Metric.WEBHOOK_UNDELIVERED_AGE, age, MetricUnit.Seconds),)),
    ):
        with single_metric(name=name, unit=unit, value=value, namespace=METRICS_NAMESPACE) as metric:
            metric.add_dimension(name=SERVICE_DIMENSION, value=SERVICE_NAME)
            metric.add_dimension(name=WEBHOOK_ENDPOINT_DIMENSION, value=delivery.endpoint_id)
    if not delivered:
        # The alarm's metric: the oldest undelivered event of any endpoint (service dimension only).
        metrics.add_metric(name=Metric.WEBHOOK_UNDELIVERED_AGE, unit=MetricUnit.Seconds, value=age)
    logger.info(
        "webhook attempt",
        extra={
            "endpoint_id": delivery.endpoint_id,
            "event_id": delivery.event_id,
            "attempt": delivery.attempt,
            "outcome": str(outcome),
            "status": done.status,
            **({"refused": done.refused} if done.refused else {}),
        },
    )
