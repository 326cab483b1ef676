"""A replay of a client's events to one of its webhook endpoints, over a time range.

``POST /webhook-endpoints/{id}/replay`` takes ``{"from": ..., "to": ...}`` (ISO 8601 times with a
zone; ``to`` is now when left out, and never later than now) and answers 202 at once: a range can
hold a month of a merchant's payments, more than one request can send. What it starts is a
:class:`ReplayJob` on the webhook deliveries queue, which the deliverer takes a page at a time
(:func:`chalicelib.deliverer.deliver_batch`): a page of the client's events from the payments
table's events index, one delivery of each to the endpoint (the body the notifier published, the
event's own id as ``webhook-id``, attempt 1 of a fresh schedule), then the job again from the next
page. The queue carries the job through crashes and restarts; a page taken twice sends its events
twice, each with its one ``webhook-id``, which receivers deduplicate on.

One replay at a time per endpoint: a new one supersedes the one running (the endpoint keeps the
newest replay's id, and an older job stops at its next page), so a client asking again and again
costs one replay's work, not many. A disabled endpoint receives nothing, a replay included: it is
refused until the endpoint is enabled again (``payments-dr webhooks enable``).

Pure Python, no AWS.
"""

from __future__ import annotations

import json
import secrets as random_secrets
from datetime import datetime
from typing import Any, NamedTuple

from chalicelib.errors import FieldError

# The longest range one replay covers (Stripe lists and re-sends 30 days of events).
MAX_REPLAY_DAYS = 31
MAX_REPLAY_MS = MAX_REPLAY_DAYS * 24 * 3600 * 1000
# Events a job's page reads and queues: one page is a query and five batches of ten sends.
REPLAY_PAGE_SIZE = 50
REPLAY_ID_PREFIX = "wr_"
# The key of a job in a webhook queue message (a delivery's and an announcement's have none).
REPLAY_MESSAGE_KEY = "replay"


class ReplayRange(NamedTuple):
    """The stored times of the events to replay, epoch ms: from ``since`` up to, not including, ``until``."""

    since: int
    until: int


def validate_replay(body: Any, *, now: float) -> tuple[ReplayRange | None, list[FieldError]]:
    """The range a replay request asks for, or every problem with it (each naming its field)."""
    if not isinstance(body, dict):
        return None, [FieldError("body", "must be a JSON object with from and, optionally, to")]
    errors = [FieldError(name, "is not a field of a replay") for name in sorted(set(body) - {"from", "to"})]
    now_ms = int(now * 1000)
    since = _instant(body, "from", errors, required=True)
    until = _instant(body, "to", errors, required=False)
    until = now_ms if until is None else min(until, now_ms)
    if since is not None and not errors:
        if since >= until:
            errors.append(FieldError("from", "must be before to (and before now)"))
        elif until - since > MAX_REPLAY_MS:
            errors.append(FieldError("to", f"must be at most {MAX_REPLAY_DAYS} days after from"))
    if errors or since is None:
        return None, errors
    return ReplayRange(since, until), []


def _instant(body: dict[str, Any], name: str, errors: list[FieldError], *, required: bool) -> int | None:
    value = body.get(name)
    if value is None:
        if required:
            errors.append(FieldError(name, "is required: an ISO 8601 time with its zone"))
        return None
    if not isinstance(value, str):
        errors.append(FieldError(name, "must be an ISO 8601 time with its zone, as a string"))
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        errors.append(FieldError(name, "is not an ISO 8601 time, e.g. 2026-12-01T00:00:00Z"))
        return None
    if moment.tzinfo is None:
        errors.append(FieldError(name, "must name its zone (Z, or an offset such as +01:00)"))
        return None
    return int(moment.timestamp() * 1000)


def new_replay_id(now: float) -> str:
    """A replay's id, ordered by when it was asked for: a later replay's id is greater."""
    return f"{REPLAY_ID_PREFIX}{int(now * 1000):013d}{random_secrets.token_hex(6)}"


def superseded(job_replay_id: str, endpoint_replay_id: str) -> bool:
    """Whether a later replay of the endpoint has replaced the job's (ids order by time)."""
    return endpoint_replay_id > job_replay_id


class ReplayJob(NamedTuple):
    """A replay in progress: whose events, to which endpoint, over what range, and from which page."""

    client: str
    endpoint_id: str
    replay_id: str
    since: int
    until: int
    # Where the next page starts (the repository's cursor, plain JSON); None: the first page.
    cursor: dict[str, Any] | None = None

    def to_json(self) -> str:
        """The job as a webhook queue message."""
        return json.dumps({REPLAY_MESSAGE_KEY: self._asdict()}, separators=(",", ":"))

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> ReplayJob:
        """The job a webhook queue message holds."""
        return cls(**message[REPLAY_MESSAGE_KEY])


def is_replay(message: Any) -> bool:
    """Whether a webhook queue message is a replay job."""
    return isinstance(message, dict) and isinstance(message.get(REPLAY_MESSAGE_KEY), dict)
