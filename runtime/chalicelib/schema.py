"""The service's data and wire formats: table keys, scoped ids, message attributes and headers.

What a stored item, a queued message or a request looks like is defined here once, for the
runtime, the stacks (which create the tables), the local environment and the operator's tools.

The payments table's sort key says what an item is (:class:`PaymentsTableSchema`):
- ``0``: the payment's claim, one per transaction id, written first; from it on the payment exists;
- above ``0``: the payment's record, at its processing time in epoch milliseconds (what the
  customer index and time-ordered reads see);
- below ``0``: a rejection, one per rejected queue message of that transaction id.
"""

from __future__ import annotations

from typing import NamedTuple


class SecondaryIndex(NamedTuple):
    """A global secondary index: its name, its keys with their types (``S``, ``N``) and what it projects."""

    name: str
    partition_key: str
    partition_type: str
    sort_key: str
    sort_type: str
    projection: str  # ALL or KEYS_ONLY

    def key_attributes(self) -> tuple[tuple[str, str], tuple[str, str]]:
        """Each key attribute with its type, partition key first."""
        return (self.partition_key, self.partition_type), (self.sort_key, self.sort_type)


class PaymentsTableSchema:
    """Key schema of the payments table and its customer index (sort keys: see the module's docstring)."""

    PARTITION_KEY = "transaction_id"
    SORT_KEY = "timestamp"
    CUSTOMER_INDEX = "customer-index"
    CUSTOMER_INDEX_PARTITION_KEY = "customer_id"
    CUSTOMER_INDEX_SORT_KEY = "timestamp"
    STREAM_VIEW_TYPE = "NEW_AND_OLD_IMAGES"
    # The claim item that makes processing idempotent sits beside the payment record under the
    # same partition key; no real payment is ever stamped at epoch 0.
    CLAIM_SORT_KEY = 0
    # A client's events (its claims and rejections: what is announced) by the time they were
    # stored, for a webhook replay over a time range. Sparse: only announced items carry its keys.
    # Its partition is the client and a shard of the transaction id: an index partition takes 1,000
    # writes a second, and a throttled index throttles the table's writes, so a client meets that
    # limit only past 4,000 payments a second (its API throttle is 100 by default).
    EVENTS_INDEX = "events-index"
    EVENTS_INDEX_PARTITION_KEY = "events_of"
    EVENTS_INDEX_SORT_KEY = "event_time"
    EVENTS_INDEX_SHARDS = 4
    # Both indexes as the stacks and the local environment create them: the customer index holds
    # the record whole (a history page is one query); the events index keys only (a replay is rare,
    # and reads the page's items by those keys).
    INDEXES = (
        SecondaryIndex(
            CUSTOMER_INDEX, CUSTOMER_INDEX_PARTITION_KEY, "S", CUSTOMER_INDEX_SORT_KEY, "N", "ALL"
        ),
        SecondaryIndex(
            EVENTS_INDEX, EVENTS_INDEX_PARTITION_KEY, "S", EVENTS_INDEX_SORT_KEY, "N", "KEYS_ONLY"
        ),
    )


class ClientsTableSchema:
    """The client directory of one region: which client each of the region's API key ids belongs to.

    API Gateway hands the function the id of the key a request carried; ids differ between the
    regions and between a client's rotated keys, and the client (its name) is what owns payments.
    """

    PARTITION_KEY = "api_key_id"
    CLIENT_ATTRIBUTE = "client"


# What owns every payment, rejection and Idempotency-Key record: the client, by name. Stored keys
# join the client and the client's own id with this character, which neither may contain.
CLIENT_SCOPE_SEPARATOR = "#"
# The message attribute (payment queue, transactions topic) naming the client a payment belongs to.
CLIENT_MESSAGE_ATTRIBUTE = "client"
# Message attribute that carries a payment's correlation id from the API to the processor.
CORRELATION_ID_ATTRIBUTE = "correlation_id"
# What a region draining for a switchover answers its refusals with (chalicelib.http), so the
# peer's canary does not read a planned drain as a failure (chalicelib.canary).
REGION_DRAINING_HEADER = "X-Region-Draining"
# On every 5xx answer of a payment route: ``none`` when the request stored nothing (the client may
# send it to the other region at once), ``unknown`` when it may have (the client retries here).
PAYMENT_OUTCOME_HEADER = "Payment-Outcome"
NOTHING_COMMITTED = "none"
OUTCOME_UNKNOWN = "unknown"
# On every answer of the API: the payments table's consistency mode. ``strong`` (multi-Region
# strong consistency) tells a client that a retry in the other region is safe at once, even after
# an attempt whose outcome it does not know: a claim is acknowledged only once the peer has it.
CONSISTENCY_HEADER = "Payment-Consistency"
STRONG_CONSISTENCY = "strong"
EVENTUAL_CONSISTENCY = "eventual"


class WebhookEndpointsSchema:
    """The webhook endpoints table: a client's endpoints in its partition, one item each."""

    PARTITION_KEY = "client"
    SORT_KEY = "endpoint_id"
    SECRET = "signing_secret"
    PREVIOUS_SECRET = "previous_signing_secret"
    PREVIOUS_SECRET_UNTIL = "previous_signing_secret_until"
    VERSION = "version"


class IdempotencyKeys:
    """The ``Idempotency-Key`` request header, as payment APIs define it, and its stored records."""

    HEADER = "Idempotency-Key"
    # Keys live a day, as Stripe's do: long enough for any client retry loop.
    TTL_SECONDS = 24 * 3600
    MAX_LENGTH = 255
    PARTITION_KEY = "id"
    EXPIRY_ATTRIBUTE = "expiration"


# Every environment's payments table is named ``payments-{suffix}`` (ResourceNames.payments_table).
PAYMENTS_TABLE_PREFIX = "payments-"


def is_payments_table(table_name: str) -> bool:
    """Whether ``table_name`` is some environment's payments table (the local AWS applies its rules)."""
    return table_name.startswith(PAYMENTS_TABLE_PREFIX)


# The client the observer's canary calls the peer's API as: a client like any other, with its own
# key (created with the stacks) and throttle.
CANARY_CLIENT = "canary"
# Clients whose payments are synthetic: never announced on transactions, and removed by the canary.
SYNTHETIC_CLIENTS = frozenset({CANARY_CLIENT})
# A client name: what its keys, usage plan and secret are named after.
CLIENT_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,39}$"
# The field of a client's secret (JSON) that holds its current API key value.
API_KEY_SECRET_FIELD = "api_key"


class ClientThrottle(NamedTuple):
    """A client's usage-plan throttle: steady requests per second and burst."""

    rate_limit: float
    burst_limit: int


# The canary makes two requests a minute; merchants get what `payments-dr clients create` gives.
CANARY_THROTTLE = ClientThrottle(rate_limit=5, burst_limit=10)
DEFAULT_CLIENT_THROTTLE = ClientThrottle(rate_limit=100, burst_limit=200)
