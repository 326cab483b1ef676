"""AWS adapters for the payment ports: DynamoDB, SQS and SNS through boto3 clients.

Clients are created on first use, not at import, so a cold start pays only for the services
the invocation touches. botocore's standard retry mode gives every call bounded retries with
jittered backoff; what still fails surfaces as :class:`DependencyUnavailable` so the caller
answers 503 or leaves the message on the queue.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from decimal import Decimal
from functools import cached_property
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.errors import DependencyUnavailable, FieldError, InvalidQuery
from chalicelib.names import CORRELATION_ID_ATTRIBUTE, PaymentsTableSchema as Schema
from chalicelib.payments import PaymentRecord, PaymentRequest
from chalicelib.processing import CustomerPage, processed_message

CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=2,
    read_timeout=5,
)
HEALTH_PROBE_KEY = "__health__"

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def make_client(service: str, region: str) -> Any:
    """A boto3 client for ``service`` in ``region`` with the project's retry policy.

    ``AWS_ENDPOINT_URL`` in the environment points it at a local AWS instead of the real one.
    """
    return boto3.client(service, region_name=region, config=CLIENT_CONFIG)  # type: ignore[call-overload]


ClientFactory = Callable[[], Any]


def _item(values: dict[str, Any]) -> dict[str, Any]:
    return {key: _serializer.serialize(value) for key, value in values.items()}


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {key: _deserializer.deserialize(value) for key, value in item.items()}


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


class DynamoPaymentRepository:
    """Payments in the DynamoDB payments table.

    Each payment is two items under its transaction id, written in one transaction:
    - the claim (sort key 0): exists once per transaction id; its conditional put is what makes
      processing idempotent, and it holds a copy of the record so a repeat or a lookup by id is
      one request. It carries no ``customer_id`` attribute, so it stays out of the customer index.
    - the record (sort key = processing time in epoch ms): what the customer index and
      time-ordered reads see.
    Item states: (none) -> claim + record, atomically; nothing ever updates or deletes them.
    """

    def __init__(self, *, table_name: str, client: ClientFactory) -> None:
        self._table = table_name
        self._client_factory = client

    @cached_property
    def _client(self) -> Any:
        return self._client_factory()

    def _claim_key(self, transaction_id: str) -> dict[str, Any]:
        return _item({Schema.PARTITION_KEY: transaction_id, Schema.SORT_KEY: Schema.CLAIM_SORT_KEY})

    def insert_new(self, record: PaymentRecord) -> PaymentRecord | None:
        """Store ``record`` unless its transaction id is taken; else return the stored record."""
        claim_not_taken = "attribute_not_exists(#pk)"
        item = record_to_item(record)
        claim = {
            Schema.PARTITION_KEY: record.transaction_id,
            Schema.SORT_KEY: Schema.CLAIM_SORT_KEY,
            "record": {k: v for k, v in item.items() if k != Schema.PARTITION_KEY},
        }
        try:
            self._client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": _item(claim),
                            "ConditionExpression": claim_not_taken,
                            "ExpressionAttributeNames": {"#pk": Schema.PARTITION_KEY},
                            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                        }
                    },
                    {"Put": {"TableName": self._table, "Item": _item(item)}},
                ]
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise DependencyUnavailable("payments table") from error
            reasons = error.response.get("CancellationReasons") or [{}]
            if reasons[0].get("Code") == "ConditionalCheckFailed" and reasons[0].get("Item"):
                return self._record_from_claim(_plain(reasons[0]["Item"]))
            # A concurrent writer of the same transaction id, or a store that does not return
            # the old item: the claim decides, read it consistently.
            existing = self.get(record.transaction_id)
            if existing is None:
                raise DependencyUnavailable("payments table") from error
            return existing
        except BotoCoreError as error:
            raise DependencyUnavailable("payments table") from error
        return None

    @staticmethod
    def _record_from_claim(claim: dict[str, Any]) -> PaymentRecord:
        return record_from_item({**claim["record"], Schema.PARTITION_KEY: claim[Schema.PARTITION_KEY]})

    def get(self, transaction_id: str) -> PaymentRecord | None:
        """The payment stored under ``transaction_id`` (strongly consistent read of its claim)."""
        try:
            response = self._client.get_item(
                TableName=self._table, Key=self._claim_key(transaction_id), ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as error:
            raise DependencyUnavailable("payments table") from error
        item = response.get("Item")
        return self._record_from_claim(_plain(item)) if item else None

    def list_for_customer(self, customer_id: str, *, limit: int, cursor: str | None) -> CustomerPage:
        """A page of ``customer_id``'s payments from the customer index, newest first."""
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": Schema.CUSTOMER_INDEX,
            "KeyConditionExpression": "#customer = :customer",
            "ExpressionAttributeNames": {"#customer": Schema.CUSTOMER_INDEX_PARTITION_KEY},
            "ExpressionAttributeValues": {":customer": {"S": customer_id}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if cursor is not None:
            query["ExclusiveStartKey"] = decode_cursor(cursor, customer_id)
        try:
            response = self._client.query(**query)
        except (ClientError, BotoCoreError) as error:
            raise DependencyUnavailable("payments table") from error
        last_key = response.get("LastEvaluatedKey")
        return CustomerPage(
            payments=[record_from_item(_plain(item)) for item in response.get("Items", [])],
            next_cursor=encode_cursor(last_key) if last_key else None,
        )

    def ping(self) -> None:
        """Read one key from the table; raises :class:`DependencyUnavailable` if it cannot."""
        try:
            self._client.get_item(
                TableName=self._table,
                Key=self._claim_key(HEALTH_PROBE_KEY),
                ProjectionExpression="#pk",
                ExpressionAttributeNames={"#pk": Schema.PARTITION_KEY},
            )
        except (ClientError, BotoCoreError) as error:
            raise DependencyUnavailable("payments table") from error


_CURSOR_KEYS = {
    Schema.PARTITION_KEY: "S",
    Schema.SORT_KEY: "N",
    Schema.CUSTOMER_INDEX_PARTITION_KEY: "S",
}


def encode_cursor(last_evaluated_key: dict[str, Any]) -> str:
    """An opaque page cursor from DynamoDB's ``LastEvaluatedKey``."""
    raw = json.dumps(last_evaluated_key, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, customer_id: str) -> dict[str, Any]:
    """The ``ExclusiveStartKey`` in ``cursor``; refuses cursors not made for ``customer_id``."""
    invalid = InvalidQuery([FieldError("cursor", "is not a cursor returned for this customer")])
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error) as error:
        raise invalid from error
    if not isinstance(key, dict) or set(key) != set(_CURSOR_KEYS):
        raise invalid
    for name, kind in _CURSOR_KEYS.items():
        value = key[name]
        if not isinstance(value, dict) or set(value) != {kind} or not isinstance(value[kind], str):
            raise invalid
    if key[Schema.CUSTOMER_INDEX_PARTITION_KEY]["S"] != customer_id:
        raise invalid
    try:
        Decimal(key[Schema.SORT_KEY]["N"])
    except ArithmeticError as error:
        raise invalid from error
    return key


class SqsPaymentQueue:
    """The payment queue; the correlation id travels as a message attribute."""

    def __init__(self, *, queue_url: str, client: ClientFactory) -> None:
        self._queue_url = queue_url
        self._client_factory = client

    @cached_property
    def _client(self) -> Any:
        return self._client_factory()

    def enqueue(self, payment: PaymentRequest, *, correlation_id: str | None) -> None:
        """Send ``payment`` to the processor."""
        attributes = {}
        if correlation_id:
            attributes[CORRELATION_ID_ATTRIBUTE] = {"DataType": "String", "StringValue": correlation_id}
        try:
            self._client.send_message(
                QueueUrl=self._queue_url,
                MessageBody=json.dumps(payment.to_message(), separators=(",", ":")),
                MessageAttributes=attributes,
            )
        except (ClientError, BotoCoreError) as error:
            raise DependencyUnavailable("payment queue") from error


class SnsNotifications:
    """The transactions topic; attributes let subscribers filter without parsing the body."""

    def __init__(self, *, topic_arn: str, client: ClientFactory) -> None:
        self._topic_arn = topic_arn
        self._client_factory = client

    @cached_property
    def _client(self) -> Any:
        return self._client_factory()

    def payment_processed(self, record: PaymentRecord) -> None:
        """Publish one ``payment.processed`` message for ``record``."""
        try:
            self._client.publish(
                TopicArn=self._topic_arn,
                Message=json.dumps(processed_message(record), separators=(",", ":")),
                MessageAttributes={
                    "currency": {"DataType": "String", "StringValue": record.currency},
                    "fraud_review": {"DataType": "String", "StringValue": str(record.fraud_review).lower()},
                },
            )
        except (ClientError, BotoCoreError) as error:
            raise DependencyUnavailable("transactions topic") from error

