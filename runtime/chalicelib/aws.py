"""AWS adapters for the payment ports: DynamoDB, SQS and SNS through botocore clients.

Clients are created on first use, not at import, so a cold start pays only for the services
the invocation touches; they come from botocore directly (boto3 adds only import time here).
botocore's standard retry mode gives every call bounded retries with
jittered backoff; what still fails surfaces as :class:`DependencyUnavailable` so the caller
answers 503 or leaves the message on the queue.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, cast

import botocore.session
from botocore.config import Config
from botocore.credentials import CredentialResolver, EnvProvider
from botocore.exceptions import BotoCoreError, ClientError
from botocore.loaders import Loader
from botocore.parsers import ResponseParserError

from chalicelib.errors import DependencyUnavailable, FieldError, InvalidQuery
from chalicelib.items import (
    claim_attributes,
    key_attributes,
    record_attributes,
    record_from_attributes,
    rejection_attributes,
    rejection_from_attributes,
    rejection_key,
)
from chalicelib.names import CORRELATION_ID_ATTRIBUTE, IdempotencyKeys
from chalicelib.names import PaymentsTableSchema as Schema
from chalicelib.observability import report_dependency_failure
from chalicelib.payments import PaymentRecord, PaymentRequest, is_identifier
from chalicelib.processing import (
    Announced,
    CustomerPage,
    PaymentLookup,
    Rejection,
    event_name,
    notification_body,
)
from chalicelib.regions import RegionFlag

# Three attempts in all (botocore's max_attempts would count retries only): with the 5 s read
# timeout a failing call gives up well inside API Gateway's 29 s limit.
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 3},
    connect_timeout=2,
    read_timeout=5,
)
HEALTH_PROBE_KEY = "__health__"
# A lookup by transaction id shows at most this many rejected reuses beside the payment.
MAX_REJECTIONS_SHOWN = 10
REJECTION_KEY_ATTEMPTS = 5

# Everything a call can fail with once botocore's retries are spent; a garbled error response
# raises ResponseParserError, which is neither of the other two.
AWS_FAILURES = (ClientError, BotoCoreError, ResponseParserError)

# The API operations the functions call (Powertools' idempotency store makes the last three
# DynamoDB ones). Clients are built from API data holding only these, generated from the
# pinned botocore into SDK_DATA by `make sdk-data`: botocore's own data would make a cold
# start parse a 1.2 MB endpoints file and every operation of each service, and list the
# directories of some 400 services, for a few calls.
# The payments table's operations (its alarm counts their SystemErrors, stacks/monitoring.py).
PAYMENTS_TABLE_OPERATIONS = ("TransactWriteItems", "GetItem", "Query", "PutItem")
SDK_OPERATIONS: dict[str, tuple[str, ...]] = {
    "dynamodb": (*PAYMENTS_TABLE_OPERATIONS, "UpdateItem", "DeleteItem"),
    "sqs": ("SendMessage", "GetQueueAttributes"),
    "sns": ("Publish", "PublishBatch"),
    "ssm": ("GetParameter", "PutParameter"),
}
SDK_DATA = Path(__file__).with_name("sdk_data")
GENERATED_FROM = "generated-from"  # SDK_DATA/generated-from.json: {"botocore": version}
ENVIRONMENT_CREDENTIALS = (EnvProvider.ACCESS_KEY, EnvProvider.SECRET_KEY)

_session: Any = None


def make_client(service: str, region: str) -> Any:
    """A botocore client for ``service`` in ``region`` with the project's retry policy.

    All clients share one session, so service data files are read once per container.
    ``AWS_ENDPOINT_URL`` in the environment points it at a local AWS instead of the real one.
    """
    return _shared_session().create_client(service, region_name=region, config=CLIENT_CONFIG)


def sdk_session() -> Any:
    """A botocore session that builds its clients from ``SDK_DATA`` alone, where it can.

    Where the environment holds credentials (Lambda puts the execution role's there) the
    session reads only the environment. botocore's chain would answer the same, since it asks
    the environment first, but it would build its instance-metadata and container fetchers
    first, an HTTP session and SSL context each, on every cold start.
    """
    session = botocore.session.get_session()
    if sdk_data_readable_by(botocore.__version__):
        session.register_component(
            "data_loader", Loader(extra_search_paths=[str(SDK_DATA)], include_default_search_paths=False)
        )
    if all(os.environ.get(name) for name in ENVIRONMENT_CREDENTIALS):
        session.register_component("credential_provider", CredentialResolver([EnvProvider()]))
    return session


def sdk_data_readable_by(botocore_version: str) -> bool:
    """Whether a botocore of ``botocore_version`` may read ``SDK_DATA``.

    Newer botocore reads older API data (models and rule sets only ever gain features); an
    older one may not know what newer data uses. The Lambda package ships the botocore the data
    came from; anywhere an older one is installed, clients use that botocore's own data:
    slower to start, never wrong.
    """
    generated_from = json.loads((SDK_DATA / f"{GENERATED_FROM}.json").read_text())["botocore"]
    return _version(botocore_version) >= _version(generated_from)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:3] if part.isdigit())


def use_session(session: Any) -> None:
    """Make clients from ``session`` from now on (``None``: a fresh :func:`sdk_session`)."""
    global _session
    _session = session


def _shared_session() -> Any:
    if _session is None:
        use_session(sdk_session())
    return _session


ClientFactory = Callable[[], Any]


class _ClientOnFirstUse:
    """An adapter whose botocore client is made the first time a call needs it."""

    def __init__(self, client: ClientFactory) -> None:
        self._client_factory = client

    @cached_property
    def _client(self) -> Any:
        return self._client_factory()


class DynamoPaymentRepository(_ClientOnFirstUse):
    """Payments in the DynamoDB payments table.

    Each payment is two items under its transaction id, written in one transaction:
    - the claim (sort key 0): exists once per transaction id; its conditional put is what makes
      processing idempotent, and it holds a copy of the record so a repeat or a lookup by id is
      one request. It carries no ``customer_id`` attribute, so it stays out of the customer index.
    - the record (sort key = processing time in epoch ms): what the customer index and
      time-ordered reads see.
    - rejections (negative sort keys, one per rejected queue message): a reuse of the
      transaction id for another payment, or a message that is not a valid payment.
    Item states: (none) -> claim + record, atomically; (none) -> rejection; nothing ever updates
    or deletes them.
    """

    def __init__(self, *, table_name: str, client: ClientFactory) -> None:
        self._table = table_name
        super().__init__(client)

    def _claim_key(self, transaction_id: str) -> dict[str, Any]:
        return key_attributes(transaction_id, Schema.CLAIM_SORT_KEY)

    def insert_new(self, record: PaymentRecord) -> PaymentRecord | None:
        """Store ``record`` unless its transaction id is taken; else return the stored record."""
        claim_not_taken = "attribute_not_exists(#pk)"
        try:
            self._client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": claim_attributes(record),
                            "ConditionExpression": claim_not_taken,
                            "ExpressionAttributeNames": {"#pk": Schema.PARTITION_KEY},
                            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                        }
                    },
                    {"Put": {"TableName": self._table, "Item": record_attributes(record)}},
                ]
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise DependencyUnavailable("payments table") from error
            reasons = error.response.get("CancellationReasons") or [{}]
            if reasons[0].get("Code") == "ConditionalCheckFailed" and reasons[0].get("Item"):
                return record_from_attributes(cast("dict[str, dict[str, Any]]", reasons[0]["Item"]))
            # A concurrent writer of the same transaction id, or a store that does not return
            # the old item: the claim decides, read it consistently.
            existing = self.get(record.transaction_id)
            if existing is None:
                raise DependencyUnavailable("payments table") from error
            return existing
        except (BotoCoreError, ResponseParserError) as error:
            raise DependencyUnavailable("payments table") from error
        return None

    def _item(self, key: dict[str, Any]) -> dict[str, Any]:
        """The stored item under ``key``, read consistently ({} if there is none)."""
        try:
            return (
                self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True).get("Item") or {}
            )
        except AWS_FAILURES as error:
            raise DependencyUnavailable("payments table") from error

    def get(self, transaction_id: str) -> PaymentRecord | None:
        """The payment stored under ``transaction_id`` (strongly consistent read of its claim)."""
        try:
            response = self._client.get_item(
                TableName=self._table, Key=self._claim_key(transaction_id), ConsistentRead=True
            )
        except AWS_FAILURES as error:
            raise DependencyUnavailable("payments table") from error
        item = response.get("Item")
        return record_from_attributes(item) if item else None

    def lookup(self, transaction_id: str) -> PaymentLookup:
        """The claim and the rejections under ``transaction_id``: one strongly consistent query."""
        try:
            response = self._client.query(
                TableName=self._table,
                KeyConditionExpression="#pk = :id AND #sk <= :claim",
                ExpressionAttributeNames={"#pk": Schema.PARTITION_KEY, "#sk": Schema.SORT_KEY},
                ExpressionAttributeValues={
                    ":id": {"S": transaction_id},
                    ":claim": {"N": str(Schema.CLAIM_SORT_KEY)},
                },
                ScanIndexForward=False,
                ConsistentRead=True,
                Limit=MAX_REJECTIONS_SHOWN + 1,
            )
        except AWS_FAILURES as error:
            raise DependencyUnavailable("payments table") from error
        record, rejections = None, []
        for item in response.get("Items", []):
            if int(item[Schema.SORT_KEY]["N"]) == Schema.CLAIM_SORT_KEY:
                record = record_from_attributes(item)
            else:
                rejections.append(rejection_from_attributes(item))
        return PaymentLookup(record=record, rejections=rejections)

    def record_rejection(self, rejection: Rejection) -> bool:
        """Store ``rejection`` at its message's sort key; False if that message's is already there.

        Two messages of one transaction id can share a sort key only when sent in the same
        millisecond with colliding message-id hashes: the later one takes the next key down.
        """
        sort_key = rejection.sort_key
        for _ in range(REJECTION_KEY_ATTEMPTS):
            try:
                self._client.put_item(
                    TableName=self._table,
                    Item=rejection_attributes(rejection, sort_key),
                    ConditionExpression="attribute_not_exists(#pk)",
                    ExpressionAttributeNames={"#pk": Schema.PARTITION_KEY},
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                return True
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise DependencyUnavailable("payments table") from error
                # ReturnValuesOnConditionCheckFailure's old item, when the store returns it.
                old_item = cast("dict[str, Any] | None", error.response.get("Item"))
                stored = old_item or self._item(rejection_key(rejection, sort_key))
                if stored.get("message_id", {}).get("S") == rejection.message_id:
                    return False
                sort_key -= 1
            except (BotoCoreError, ResponseParserError) as error:
                raise DependencyUnavailable("payments table") from error
        raise DependencyUnavailable("payments table")

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
        except AWS_FAILURES as error:
            raise DependencyUnavailable("payments table") from error
        last_key = response.get("LastEvaluatedKey")
        return CustomerPage(
            payments=[record_from_attributes(item) for item in response.get("Items", [])],
            next_cursor=encode_cursor(last_key) if last_key else None,
        )


# A cursor encodes three short keys; anything much longer was not made by this API.
MAX_CURSOR_LENGTH = 512
_CURSOR_TIMESTAMP = re.compile(r"[1-9][0-9]{0,18}")
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
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise invalid
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, RecursionError) as error:
        raise invalid from error
    if not isinstance(key, dict) or set(key) != set(_CURSOR_KEYS):
        raise invalid
    for name, kind in _CURSOR_KEYS.items():
        value = key[name]
        if not isinstance(value, dict) or set(value) != {kind} or not isinstance(value[kind], str):
            raise invalid
    # Only values DynamoDB takes as a start key: anything else would fail the query itself,
    # and a client's cursor must never produce a 503.
    if key[Schema.CUSTOMER_INDEX_PARTITION_KEY]["S"] != customer_id:
        raise invalid
    if not _CURSOR_TIMESTAMP.fullmatch(key[Schema.SORT_KEY]["N"]) or not is_identifier(
        key[Schema.PARTITION_KEY]["S"]
    ):
        raise invalid
    return key


class SqsPaymentQueue(_ClientOnFirstUse):
    """The payment queue; the correlation id travels as a message attribute."""

    def __init__(self, *, queue_url: str, client: ClientFactory) -> None:
        self._queue_url = queue_url
        super().__init__(client)

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
        except AWS_FAILURES as error:
            raise DependencyUnavailable("payment queue") from error


# Health probes answer inside Route 53's few-second budget or count as failed: one attempt each.
PROBE_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=1, read_timeout=1
)


def make_probe_client(service: str, region: str) -> Any:
    """A client for health probes: fails fast instead of retrying."""
    return _shared_session().create_client(service, region_name=region, config=PROBE_CONFIG)


class DependencyProbes:
    """Cheap reads that tell whether this region's table and queue answer and it is in service."""

    def __init__(
        self,
        *,
        table_name: str,
        queue_url: str,
        client: Callable[[str], Any],
        flag: SsmRegionControl,
        region: str,
    ) -> None:
        self._table = table_name
        self._queue_url = queue_url
        self._client_factory = client
        self._flag = flag
        self._region = region

    @cached_property
    def _dynamodb(self) -> Any:
        return self._client_factory("dynamodb")

    @cached_property
    def _sqs(self) -> Any:
        return self._client_factory("sqs")

    def table_answers(self) -> bool:
        self._dynamodb.get_item(
            TableName=self._table,
            Key=key_attributes(HEALTH_PROBE_KEY, Schema.CLAIM_SORT_KEY),
            ProjectionExpression="#pk",
            ExpressionAttributeNames={"#pk": Schema.PARTITION_KEY},
        )
        return True

    def queue_answers(self) -> bool:
        self._sqs.get_queue_attributes(
            QueueUrl=self._queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )
        return True

    def in_service(self) -> bool:
        return self._flag.flag(self._region).in_service


class SsmRegionControl:
    """In-service flags as one SSM parameter per region.

    Parameter Store is a separate, regional control-plane service: it stays readable when the
    region's table or queue is the thing failing, it costs nothing at this request rate, and
    its parameter history records every change with the IAM identity that made it.
    """

    def __init__(self, *, parameter: str, client: Callable[[str], Any]) -> None:
        self._parameter = parameter
        self._client_factory = client
        self._clients: dict[str, Any] = {}

    def _client(self, region: str) -> Any:
        if region not in self._clients:
            self._clients[region] = self._client_factory(region)
        return self._clients[region]

    def flag(self, region: str) -> RegionFlag:
        try:
            value = self._client(region).get_parameter(Name=self._parameter)["Parameter"]["Value"]
        except AWS_FAILURES as error:
            raise DependencyUnavailable(f"in-service flag of {region}") from error
        return RegionFlag.from_text(value)

    def set_flag(self, region: str, flag: RegionFlag) -> None:
        try:
            self._client(region).put_parameter(
                Name=self._parameter, Value=flag.to_text(), Type="String", Overwrite=True
            )
        except AWS_FAILURES as error:
            raise DependencyUnavailable(f"in-service flag of {region}") from error


class SnsOpsNotices(_ClientOnFirstUse):
    """What the orchestrator did, published on the ops-alert topic for people and tools."""

    def __init__(self, *, topic_arn: str, client: ClientFactory) -> None:
        self._topic_arn = topic_arn
        super().__init__(client)

    def announce(self, subject: str, details: dict[str, Any]) -> None:
        try:
            self._client.publish(TopicArn=self._topic_arn, Subject=subject[:100], Message=json.dumps(details))
        except AWS_FAILURES as error:
            raise DependencyUnavailable("ops-alert topic") from error


def idempotency_persistence(*, table_name: str, client: ClientFactory) -> Any:
    """Powertools' DynamoDB store for ``Idempotency-Key`` records, on the project's client."""
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    return DynamoDBPersistenceLayer(
        table_name=table_name,
        key_attr=IdempotencyKeys.PARTITION_KEY,
        expiry_attr=IdempotencyKeys.EXPIRY_ATTRIBUTE,
        boto3_client=client(),
    )


SNS_PUBLISH_BATCH_LIMIT = 10


class SnsNotifications(_ClientOnFirstUse):
    """The transactions topic; attributes let subscribers filter without parsing the body.

    Publishes ten events per ``PublishBatch`` request, SNS's limit, instead of one request each.
    """

    def __init__(self, *, topic_arn: str, client: ClientFactory) -> None:
        self._topic_arn = topic_arn
        super().__init__(client)

    def announce(self, items: Sequence[Announced]) -> set[int]:
        """Publish one ``payment.processed`` or ``payment.rejected`` message per item.

        Returns the indices not published.
        """
        failed: set[int] = set()
        for start in range(0, len(items), SNS_PUBLISH_BATCH_LIMIT):
            chunk = range(start, min(start + SNS_PUBLISH_BATCH_LIMIT, len(items)))
            entries = [_publish_entry(str(index), items[index]) for index in chunk]
            try:
                response = self._client.publish_batch(
                    TopicArn=self._topic_arn, PublishBatchRequestEntries=entries
                )
            except AWS_FAILURES as error:
                report_dependency_failure(error, "transactions topic")
                failed.update(chunk)
                continue
            failed.update(int(entry["Id"]) for entry in response.get("Failed", []))
        return failed


def _publish_entry(entry_id: str, item: Announced) -> dict[str, Any]:
    attributes = {"event": {"DataType": "String", "StringValue": event_name(item)}}
    if item.currency is not None:
        attributes["currency"] = {"DataType": "String", "StringValue": item.currency}
    if isinstance(item, PaymentRecord):
        attributes["fraud_review"] = {"DataType": "String", "StringValue": str(item.fraud_review).lower()}
    return {
        "Id": entry_id,
        "Message": json.dumps(notification_body(item), separators=(",", ":")),
        "MessageAttributes": attributes,
    }
