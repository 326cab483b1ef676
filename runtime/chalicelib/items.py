"""The layout of a payment in the payments table, shared by the repository and the outbox."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from chalicelib.names import PaymentsTableSchema as Schema
from chalicelib.payments import PaymentRecord


def record_to_item(record: PaymentRecord) -> dict[str, Any]:
    """The payments-table attributes of ``record``."""
    return {
        Schema.PARTITION_KEY: record.transaction_id,
        Schema.SORT_KEY: record.timestamp,
        Schema.CUSTOMER_INDEX_PARTITION_KEY: record.customer_id,
        "amount": record.amount,
        "currency": record.currency,
        "status": record.status,
        "fraud_review": record.fraud_review,
        "region": record.region,
    }


def record_from_item(item: dict[str, Any]) -> PaymentRecord:
    """The payment described by a plain (deserialized) payments-table item."""
    return PaymentRecord(
        transaction_id=item[Schema.PARTITION_KEY],
        timestamp=int(item[Schema.SORT_KEY]),
        customer_id=item[Schema.CUSTOMER_INDEX_PARTITION_KEY],
        amount=Decimal(item["amount"]),
        currency=item["currency"],
        status=item["status"],
        fraud_review=bool(item["fraud_review"]),
        region=item["region"],
    )
