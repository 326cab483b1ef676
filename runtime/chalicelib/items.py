"""A payment in the payments table, in DynamoDB's attribute-value wire format.

The repository writes these attributes and the outbox reads them back from the table's stream.
Written out for the few types a payment uses (S, N, BOOL, M) rather than through boto3's
generic serializer: it keeps boto3 out of the functions' cold start, and amounts go from
``Decimal`` to DynamoDB's number string and back without any other conversion.
"""

from __future__ import annotations

import zlib
from decimal import Decimal
from typing import Any

from chalicelib.errors import FieldError
from chalicelib.payments import STATUS_REJECTED, Announced, PaymentRecord, Rejection, in_minor_units
from chalicelib.schema import CLIENT_SCOPE_SEPARATOR, SYNTHETIC_CLIENTS
from chalicelib.schema import PaymentsTableSchema as Schema

Attributes = dict[str, dict[str, Any]]
# Every item a client's request or message made names the client; its transaction and customer
# ids are stored scoped to it (:func:`scoped`), so two clients' ids never meet.
CLIENT = "client"
# The claim keeps a copy of the record under this attribute (see DynamoPaymentRepository).
CLAIMED_RECORD = "record"
# The region whose notifier announces an item. Only what is announced carries it (a payment's
# claim, a rejection), never the record beside a claim: the claim is written once per payment by
# a conditional put, so it is announced exactly once even when the record is written later by a
# repair (see DynamoPaymentRepository.insert_new).
ANNOUNCED_BY = "announced_by"
# A rejection keeps the rejected payment's details under this attribute, so it carries no
# top-level customer id and stays out of the customer index (a rejection is not a payment).
REJECTED_PAYMENT = "payment"
# A message that names no usable transaction id is kept under this prefix and its message id;
# no transaction id can start with an underscore, so no client id ever meets one.
UNIDENTIFIED_PREFIX = "__rejected-message__:"


def scoped(client: str, identifier: str) -> str:
    """``client``'s own ``identifier`` (a transaction or customer id) as the table stores it.

    The table keeps the seed's key names (``transaction_id``, ``customer_id``); their values are
    ``{client}#{id}``. A client name and an id never contain ``#``, so the mapping is one to one.
    """
    return f"{client}{CLIENT_SCOPE_SEPARATOR}{identifier}"


def unscoped(value: str) -> tuple[str, str]:
    """The client and the client's own id in a stored key value (``("", value)`` if unscoped)."""
    client, separator, identifier = value.partition(CLIENT_SCOPE_SEPARATOR)
    return (client, identifier) if separator else ("", value)


def key_attributes(transaction_id: str, timestamp: int) -> Attributes:
    """The primary key of one item; ``transaction_id`` as stored (scoped, or a marker's)."""
    return {Schema.PARTITION_KEY: {"S": transaction_id}, Schema.SORT_KEY: {"N": str(timestamp)}}


def payment_key(client: str, transaction_id: str, timestamp: int) -> Attributes:
    """The primary key of ``client``'s item under its ``transaction_id`` at ``timestamp``."""
    return key_attributes(scoped(client, transaction_id), timestamp)


def record_attributes(record: PaymentRecord) -> Attributes:
    """The payment record item of ``record``."""
    return {
        **payment_key(record.client, record.transaction_id, record.timestamp),
        Schema.CUSTOMER_INDEX_PARTITION_KEY: {"S": scoped(record.client, record.customer_id)},
        "amount": {"N": str(record.amount)},
        "currency": {"S": record.currency},
        "status": {"S": record.status},
        "fraud_review": {"BOOL": record.fraud_review},
        "region": {"S": record.region},
        CLIENT: {"S": record.client},
    }


def claim_attributes(record: PaymentRecord) -> Attributes:
    """The claim item of ``record``: its transaction id, sort key 0, and a copy of the record.

    A synthetic client's claim (the canary's) names no announcing region: its payments are
    probes, never business events, so no subscriber ever has to know to drop them.
    """
    copy = {name: value for name, value in record_attributes(record).items() if name != Schema.PARTITION_KEY}
    claim = {
        **payment_key(record.client, record.transaction_id, Schema.CLAIM_SORT_KEY),
        CLAIMED_RECORD: {"M": copy},
        CLIENT: {"S": record.client},
    }
    if record.client not in SYNTHETIC_CLIENTS:
        claim[ANNOUNCED_BY] = {"S": record.region}
        claim.update(event_index_attributes(record.client, record.transaction_id, record.timestamp))
    return claim


def event_index_attributes(client: str, transaction_id: str, stored_at: int) -> Attributes:
    """What puts an announced item in the events index: its client's shard, and when it was stored."""
    shard = zlib.crc32(transaction_id.encode()) % Schema.EVENTS_INDEX_SHARDS
    return {
        Schema.EVENTS_INDEX_PARTITION_KEY: {"S": events_partition(client, shard)},
        Schema.EVENTS_INDEX_SORT_KEY: {"N": str(stored_at)},
    }


def events_partition(client: str, shard: int) -> str:
    """The events index partition of ``client``'s shard ``shard``."""
    return f"{client}{CLIENT_SCOPE_SEPARATOR}{shard}"


def record_key(claim: Attributes) -> Attributes:
    """The primary key of the record a claim item stands for."""
    return key_attributes(
        claim[Schema.PARTITION_KEY]["S"], int(claim[CLAIMED_RECORD]["M"][Schema.SORT_KEY]["N"])
    )


def record_from_attributes(item: Attributes) -> PaymentRecord:
    """The payment in a record item, or in a claim item's copy."""
    if CLAIMED_RECORD in item:
        item = {**item[CLAIMED_RECORD]["M"], Schema.PARTITION_KEY: item[Schema.PARTITION_KEY]}
    currency = item["currency"]["S"]
    client, transaction_id = unscoped(item[Schema.PARTITION_KEY]["S"])
    return PaymentRecord(
        transaction_id=transaction_id,
        timestamp=int(item[Schema.SORT_KEY]["N"]),
        customer_id=unscoped(item[Schema.CUSTOMER_INDEX_PARTITION_KEY]["S"])[1],
        # DynamoDB stores "12.50" as 12.5: the currency says how many digits the amount shows.
        amount=in_minor_units(Decimal(item["amount"]["N"]), currency),
        currency=currency,
        status=item["status"]["S"],
        fraud_review=bool(item["fraud_review"]["BOOL"]),
        region=item["region"]["S"],
        client=client,
    )


def is_payment_record(item: Attributes) -> bool:
    """Whether ``item`` is a payment record: not its claim, not a rejection, not a marker.

    Records are the only items with a top-level customer id (what puts them in the customer index).
    """
    return Schema.CUSTOMER_INDEX_PARTITION_KEY in item


def rejection_key(rejection: Rejection, sort_key: int) -> Attributes:
    """The primary key of ``rejection``'s item at ``sort_key`` (normally ``rejection.sort_key``).

    Under the client's transaction id when the message named both, so the client's lookup of the
    id shows it; otherwise under the message's own id, where no client's lookup ever reaches.
    """
    if rejection.client and rejection.transaction_id:
        return payment_key(rejection.client, rejection.transaction_id, sort_key)
    return key_attributes(UNIDENTIFIED_PREFIX + rejection.message_id, sort_key)


def rejection_attributes(rejection: Rejection, sort_key: int) -> Attributes:
    """The rejection item of ``rejection`` at ``sort_key`` (normally ``rejection.sort_key``)."""
    item: Attributes = {
        **rejection_key(rejection, sort_key),
        "status": {"S": STATUS_REJECTED},
        "region": {"S": rejection.region},
        ANNOUNCED_BY: {"S": rejection.region},
        "message_id": {"S": rejection.message_id},
        "sent_at": {"N": str(rejection.sent_at)},
        "rejected_at": {"N": str(rejection.rejected_at)},
        "errors": {
            "L": [{"M": {"field": {"S": e.field}, "message": {"S": e.message}}} for e in rejection.errors]
        },
    }
    payment = {
        name: {"S": value}
        for name, value in (("customer_id", rejection.customer_id), ("currency", rejection.currency))
        if value is not None
    }
    if rejection.amount is not None:
        payment["amount"] = {"N": str(rejection.amount)}
    if payment:
        item[REJECTED_PAYMENT] = {"M": payment}
    if rejection.client:
        item[CLIENT] = {"S": rejection.client}
        # A rejection is its message's: a rejection of no transaction id is sharded by the message.
        item.update(
            event_index_attributes(
                rejection.client, rejection.transaction_id or rejection.message_id, rejection.rejected_at
            )
        )
    return item


def rejection_from_attributes(item: Attributes) -> Rejection:
    """The rejection in a rejection item."""
    partition = item[Schema.PARTITION_KEY]["S"]
    payment = item.get(REJECTED_PAYMENT, {}).get("M", {})
    currency = payment.get("currency", {}).get("S")
    amount = Decimal(payment["amount"]["N"]) if "amount" in payment else None
    return Rejection(
        transaction_id=None if partition.startswith(UNIDENTIFIED_PREFIX) else unscoped(partition)[1],
        message_id=item["message_id"]["S"],
        sent_at=int(item["sent_at"]["N"]),
        rejected_at=int(item["rejected_at"]["N"]),
        region=item["region"]["S"],
        errors=tuple(FieldError(e["M"]["field"]["S"], e["M"]["message"]["S"]) for e in item["errors"]["L"]),
        customer_id=payment.get("customer_id", {}).get("S"),
        amount=in_minor_units(amount, currency) if amount is not None and currency else amount,
        currency=currency,
        client=item.get(CLIENT, {}).get("S"),
    )


def is_rejection(item: Attributes) -> bool:
    """Whether ``item`` is a rejection item (its status says so; claims have no top-level status)."""
    return item.get("status", {}).get("S") == STATUS_REJECTED


def announced_from_attributes(item: Attributes) -> Announced:
    """The payment record or the rejection an announced item holds."""
    return rejection_from_attributes(item) if is_rejection(item) else record_from_attributes(item)


def announced_items_filter(region: str) -> dict[str, Any]:
    """The stream changes the notifier announces, as a Lambda event filter pattern.

    The one definition of "a payment this region stored": the inserts of payment claims and of
    rejections that ``region`` wrote (:data:`ANNOUNCED_BY`). Not the record beside each claim (the
    claim already holds it, and a record written by a repair must not be announced again), and
    not items replicated from the peer region, whose own notifier announces them; otherwise every
    payment would be announced once per region. The stack installs this pattern on the event
    source and :func:`matches_filter` applies it again in the function, so what reaches the
    notifier and what it announces cannot differ.
    """
    return {"eventName": ["INSERT"], "dynamodb": {"NewImage": {ANNOUNCED_BY: {"S": [region]}}}}


def matches_filter(pattern: dict[str, Any], event: Any) -> bool:
    """Whether ``event`` matches a Lambda filter ``pattern`` made of value lists and objects.

    The subset of the filter grammar :func:`announced_items_filter` uses: a list matches when the
    value equals one of its items; a nested object matches field by field.
    """
    if not isinstance(event, dict):
        return False
    for name, expected in pattern.items():
        value = event.get(name)
        if isinstance(expected, dict):
            if not matches_filter(expected, value):
                return False
        elif value not in expected:
            return False
    return True
