"""A payment in the payments table, in DynamoDB's attribute-value wire format.

The repository writes these attributes and the outbox reads them back from the table's stream.
Written out for the few types a payment uses (S, N, BOOL, M) rather than through boto3's
generic serializer: it keeps boto3 out of the functions' cold start, and amounts go from
``Decimal`` to DynamoDB's number string and back without any other conversion.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from chalicelib.names import PaymentsTableSchema as Schema
from chalicelib.payments import PaymentRecord, in_minor_units

Attributes = dict[str, dict[str, Any]]
# The claim keeps a copy of the record under this attribute (see DynamoPaymentRepository).
CLAIMED_RECORD = "record"


def key_attributes(transaction_id: str, timestamp: int) -> Attributes:
    """The primary key of one item."""
    return {Schema.PARTITION_KEY: {"S": transaction_id}, Schema.SORT_KEY: {"N": str(timestamp)}}


def record_attributes(record: PaymentRecord) -> Attributes:
    """The payment record item of ``record``."""
    return {
        **key_attributes(record.transaction_id, record.timestamp),
        Schema.CUSTOMER_INDEX_PARTITION_KEY: {"S": record.customer_id},
        "amount": {"N": str(record.amount)},
        "currency": {"S": record.currency},
        "status": {"S": record.status},
        "fraud_review": {"BOOL": record.fraud_review},
        "region": {"S": record.region},
    }


def claim_attributes(record: PaymentRecord) -> Attributes:
    """The claim item of ``record``: its transaction id, sort key 0, and a copy of the record."""
    copy = {name: value for name, value in record_attributes(record).items() if name != Schema.PARTITION_KEY}
    return {**key_attributes(record.transaction_id, Schema.CLAIM_SORT_KEY), CLAIMED_RECORD: {"M": copy}}


def record_from_attributes(item: Attributes) -> PaymentRecord:
    """The payment in a record item, or in a claim item's copy."""
    if CLAIMED_RECORD in item:
        item = {**item[CLAIMED_RECORD]["M"], Schema.PARTITION_KEY: item[Schema.PARTITION_KEY]}
    currency = item["currency"]["S"]
    return PaymentRecord(
        transaction_id=item[Schema.PARTITION_KEY]["S"],
        timestamp=int(item[Schema.SORT_KEY]["N"]),
        customer_id=item[Schema.CUSTOMER_INDEX_PARTITION_KEY]["S"],
        # DynamoDB stores "12.50" as 12.5: the currency says how many digits the amount shows.
        amount=in_minor_units(Decimal(item["amount"]["N"]), currency),
        currency=currency,
        status=item["status"]["S"],
        fraud_review=bool(item["fraud_review"]["BOOL"]),
        region=item["region"]["S"],
    )


def is_payment_record_of(region: str, item: Attributes) -> bool:
    """Whether ``item`` is a payment record (not a claim) first stored in ``region``."""
    return Schema.CUSTOMER_INDEX_PARTITION_KEY in item and item.get("region", {}).get("S") == region
