"""AWS adapters for the payment ports: DynamoDB, SQS, SNS and SSM, on the clients of :mod:`chalicelib.sdk`.

What still fails after botocore's retries surfaces as :class:`DependencyUnavailable`, so the
caller answers 503 or leaves the message on the queue.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from chalicelib.cursor import decode_cursor, encode_cursor
from chalicelib.errors import DependencyUnavailable
from chalicelib.items import (
    claim_attributes,
    key_attributes,
    payment_key,
    record_attributes,
    record_from_attributes,
    record_key,
    rejection_attributes,
    rejection_from_attributes,
    rejection_key,
    scoped,
)
from chalicelib.names import (
    API_KEY_SECRET_FIELD,
    CLIENT_MESSAGE_ATTRIBUTE,
    CORRELATION_ID_ATTRIBUTE,
    ClientsTableSchema,
)
from chalicelib.names import PaymentsTableSchema as Schema
from chalicelib.observability import report_dependency_failure
from chalicelib.payments import Announced, PaymentRecord, PaymentRequest, Rejection
from chalicelib.ports import CustomerPage, PaymentLookup
from chalicelib.regions import Cached, RegionFlag
from chalicelib.sdk import AWS_FAILURES, ClientFactory, LazyClient

HEALTH_PROBE_KEY = "__health__"
# A lookup by transaction id shows at most this many rejected reuses beside the payment.
MAX_REJECTIONS_SHOWN = 10
REJECTION_KEY_ATTEMPTS = 5
CONDITION_FAILED = "ConditionalCheckFailedException"
# Multi-Region strong consistency's answer to two regions writing one item at once.
REPLICATED_WRITE_CONFLICT = "ReplicatedWriteConflictException"
# Attempts at a claim whose writes keep conflicting (each already retried by botocore), and the
# first pause between them: a conflict lasts one cross-region round trip, tens of milliseconds.
WRITE_CONFLICT_ATTEMPTS = 3
WRITE_CONFLICT_BACKOFF_SECONDS = 0.05


class DynamoPaymentRepository:
    """Payments in the DynamoDB payments table.

    Each payment is two items under its transaction id, written by two plain conditional puts
    (no transaction: multi-Region strong consistency refuses them, and a transactional write
    costs twice the write units):
    - the claim (sort key 0): exists once per transaction id; its conditional put is the one
      decision that makes processing idempotent, and from that put on the payment exists. It
      holds a copy of the record, so a repeat, a lookup by id and the notifier's announcement
      (:data:`~chalicelib.items.ANNOUNCED_BY`) need nothing else. It carries no ``customer_id``
      attribute, so it stays out of the customer index.
    - the record (sort key = processing time in epoch ms): what the customer index and
      time-ordered reads see; derived from the claim, so whoever finds it missing writes it.
    - rejections (negative sort keys, one per rejected queue message): a reuse of the
      transaction id for another payment, or a message that is not a valid payment.
    Item states: (none) -> claim -> claim + record; (none) -> rejection; nothing ever updates or
    deletes them. A crash between the claim and the record leaves a stored, announced payment
    whose record the retry of the request or the redelivery of its message writes
    (:meth:`insert_new`).
    """

    def __init__(
        self, *, table_name: str, client: ClientFactory, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self._table = table_name
        self._client = LazyClient(client)
        self._sleep = sleep

    def _claim_key(self, client: str, transaction_id: str) -> dict[str, Any]:
        return payment_key(client, transaction_id, Schema.CLAIM_SORT_KEY)

    def insert_new(self, record: PaymentRecord) -> PaymentRecord | None:
        """Store ``record`` unless its transaction id is taken; else return the stored record.

        Timeline of one call: claim (conditional put) -> record (conditional put). A call that
        finds the claim taken completes the record the claim stands for if it is missing, so a
        writer that crashed between the two puts is repaired by the next attempt; the record's
        put is conditional too, so two attempts racing to complete it write it once.
        """
        claimed = self._claim(record)
        if claimed is None:
            self._put_record(record_attributes(record))
            return None
        stored = record_from_attributes(claimed)
        if not self._item(record_key(claimed), projection=Schema.PARTITION_KEY):
            self._put_record(record_attributes(stored))
        return stored

    def _claim(self, record: PaymentRecord) -> dict[str, Any] | None:
        """Put ``record``'s claim; None if this call made it, else the claim already stored.

        Under multi-Region strong consistency a write of the same claim from the other region at
        the same moment fails with ``ReplicatedWriteConflictException`` (botocore retries it):
        the other region's write decides, so the claim is read back and, if that write did not
        land either, claimed again.
        """
        claim_not_taken = "attribute_not_exists(#pk)"
        for attempt in range(WRITE_CONFLICT_ATTEMPTS):
            try:
                self._client.put_item(
                    TableName=self._table,
                    Item=claim_attributes(record),
                    ConditionExpression=claim_not_taken,
                    ExpressionAttributeNames={"#pk": Schema.PARTITION_KEY},
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                return None
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") not in (
                    CONDITION_FAILED,
                    REPLICATED_WRITE_CONFLICT,
                ):
                    raise DependencyUnavailable("payments table") from error
                # The claim is taken, or being taken by the other region: the stored one decides.
                # ReturnValuesOnConditionCheckFailure's old item when the store returns it, else a read.
                old_item = cast("dict[str, Any] | None", error.response.get("Item"))
                stored = old_item or self._item(self._claim_key(record.client, record.transaction_id))
                if stored:
                    return stored
                if attempt + 1 == WRITE_CONFLICT_ATTEMPTS:
                    raise DependencyUnavailable("payments table") from error
                self._sleep(WRITE_CONFLICT_BACKOFF_SECONDS * 2**attempt)
            except (BotoCoreError, ResponseParserError) as error:
                raise DependencyUnavailable("payments table") from error
        raise DependencyUnavailable("payments table")

    def _put_record(self, item: dict[str, Any]) -> None:
        """Put a payment's record once: a record already there (a racing repair wrote it) is fine."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(#pk)",
                ExpressionAttributeNames={"#pk": Schema.PARTITION_KEY},
            )
        except ClientError as error:
            # The record is derived from the claim, so one already there is this one: the
            # condition keeps its stream to a single INSERT, never a second announcement.
            if error.response.get("Error", {}).get("Code") != CONDITION_FAILED:
                raise DependencyUnavailable("payments table") from error
        except (BotoCoreError, ResponseParserError) as error:
            raise DependencyUnavailable("payments table") from error

    def _item(self, key: dict[str, Any], projection: str | None = None) -> dict[str, Any]:
        """The stored item under ``key``, read consistently ({} if there is none).

        ``projection``: the one attribute to read, when only whether the item exists matters.
        """
        request: dict[str, Any] = {"TableName": self._table, "Key": key, "ConsistentRead": True}
        if projection is not None:
            request["ProjectionExpression"] = "#attribute"
            request["ExpressionAttributeNames"] = {"#attribute": projection}
        try:
            return self._client.get_item(**request).get("Item") or {}
        except AWS_FAILURES as error:
            raise DependencyUnavailable("payments table") from error

    def get(self, client: str, transaction_id: str) -> PaymentRecord | None:
        """``client``'s payment under ``transaction_id`` (strongly consistent read of its claim)."""
        try:
            response = self._client.get_item(
                TableName=self._table, Key=self._claim_key(client, transaction_id), ConsistentRead=True
            )
        except AWS_FAILURES as error:
            raise DependencyUnavailable("payments table") from error
        item = response.get("Item")
        return record_from_attributes(item) if item else None

    def lookup(self, client: str, transaction_id: str) -> PaymentLookup:
        """``client``'s claim and rejections under ``transaction_id``: one strongly consistent query."""
        try:
            response = self._client.query(
                TableName=self._table,
                KeyConditionExpression="#pk = :id AND #sk <= :claim",
                ExpressionAttributeNames={"#pk": Schema.PARTITION_KEY, "#sk": Schema.SORT_KEY},
                ExpressionAttributeValues={
                    ":id": {"S": scoped(client, transaction_id)},
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
                if error.response.get("Error", {}).get("Code") != CONDITION_FAILED:
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

    def list_for_customer(
        self, client: str, customer_id: str, *, limit: int, cursor: str | None
    ) -> CustomerPage:
        """A page of ``client``'s payments of ``customer_id`` from the customer index, newest first."""
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": Schema.CUSTOMER_INDEX,
            "KeyConditionExpression": "#customer = :customer",
            "ExpressionAttributeNames": {"#customer": Schema.CUSTOMER_INDEX_PARTITION_KEY},
            "ExpressionAttributeValues": {":customer": {"S": scoped(client, customer_id)}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if cursor is not None:
            query["ExclusiveStartKey"] = decode_cursor(cursor, client, customer_id)
        try:
            response = self._client.query(**query)
        except AWS_FAILURES as error:
            raise DependencyUnavailable("payments table") from error
        last_key = response.get("LastEvaluatedKey")
        return CustomerPage(
            payments=[record_from_attributes(item) for item in response.get("Items", [])],
            next_cursor=encode_cursor(last_key) if last_key else None,
        )

    def remove_payments(self, client: str, customer_id: str, *, older_than: int, limit: int) -> int:
        """Delete ``client``'s oldest payments of ``customer_id`` from before ``older_than``: record, then claim.

        One query of the customer index and two deletes a payment. The record goes first: a run
        stopped between the two leaves a claim, which no listing shows and a lookup still answers.
        Deletes are never announced (the notifier takes inserts only).
        """
        try:
            response = self._client.query(
                TableName=self._table,
                IndexName=Schema.CUSTOMER_INDEX,
                KeyConditionExpression="#customer = :customer AND #ts < :cutoff",
                ExpressionAttributeNames={
                    "#customer": Schema.CUSTOMER_INDEX_PARTITION_KEY,
                    "#ts": Schema.CUSTOMER_INDEX_SORT_KEY,
                },
                ExpressionAttributeValues={
                    ":customer": {"S": scoped(client, customer_id)},
                    ":cutoff": {"N": str(older_than)},
                },
                Limit=limit,
            )
            removed = 0
            for item in response.get("Items", []):
                transaction = item[Schema.PARTITION_KEY]["S"]
                for sort_key in (item[Schema.SORT_KEY]["N"], str(Schema.CLAIM_SORT_KEY)):
                    self._client.delete_item(
                        TableName=self._table,
                        Key={Schema.PARTITION_KEY: {"S": transaction}, Schema.SORT_KEY: {"N": sort_key}},
                    )
                removed += 1
        except AWS_FAILURES as error:
            raise DependencyUnavailable("payments table") from error
        return removed


class DynamoClientDirectory:
    """The region's client directory: API key id -> client, kept for the container's life.

    A key's id is never given to another key and its client never changes, so a found entry is
    kept (API Gateway holds at most 10,000 keys a region, so the entries stay few); a key of no
    client is asked again each time, so a key registered a moment ago is known at its first request. A revoked key never
    reaches the function: API Gateway refuses it first.
    """

    def __init__(self, *, table_name: str, client: ClientFactory) -> None:
        self._table = table_name
        self._client = LazyClient(client)
        self._known: dict[str, str] = {}

    def client_of(self, api_key_id: str) -> str | None:
        """The client owning ``api_key_id``, or None (one consistent read the first time)."""
        if api_key_id in self._known:
            return self._known[api_key_id]
        try:
            item = self._client.get_item(
                TableName=self._table,
                Key={ClientsTableSchema.PARTITION_KEY: {"S": api_key_id}},
                ConsistentRead=True,
            ).get("Item")
        except AWS_FAILURES as error:
            raise DependencyUnavailable("client directory") from error
        client = (item or {}).get(ClientsTableSchema.CLIENT_ATTRIBUTE, {}).get("S")
        if not isinstance(client, str) or not client:
            return None
        self._known[api_key_id] = client
        return client


class SqsPaymentQueue:
    """The payment queue; the client and the correlation id travel as message attributes."""

    def __init__(self, *, queue_url: str, client: ClientFactory) -> None:
        self._queue_url = queue_url
        self._client = LazyClient(client)

    def enqueue(self, payment: PaymentRequest, *, client: str, correlation_id: str | None) -> None:
        """Send ``client``'s ``payment`` to the processor."""
        attributes = {CLIENT_MESSAGE_ATTRIBUTE: {"DataType": "String", "StringValue": client}}
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
        self._dynamodb = LazyClient(client, "dynamodb")
        self._sqs = LazyClient(client, "sqs")
        self._flag = flag
        self._region = region

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
        return self.flag().in_service

    def flag(self) -> RegionFlag:
        return self._flag.flag(self._region)


class SsmRegionControl:
    """In-service flags as one SSM parameter per region.

    Parameter Store is a separate, regional control-plane service: it stays readable when the
    region's table or queue is the thing failing, it costs nothing at this request rate, and
    its parameter history records every change with the IAM identity that made it.
    """

    def __init__(self, *, parameter: str, client: Callable[[str], Any]) -> None:
        self._parameter = parameter
        self._client_factory = client
        self._clients: dict[str, LazyClient] = {}
        # The last flag read per region: what a throttled read answers instead of failing.
        self._last: dict[str, RegionFlag] = {}

    def _client(self, region: str) -> LazyClient:
        return self._clients.setdefault(region, LazyClient(self._client_factory, region))

    def flag(self, region: str) -> RegionFlag:
        """``region``'s flag; the last one read when Parameter Store throttles or times out.

        Parameter Store's throughput is shared by every caller in the account and region: a busy
        account must not make a healthy region look out of service (``/health`` 503) on its own.
        A flag that cannot be read for any other reason (access denied, no such parameter), or
        that was never read, still fails.
        """
        try:
            value = self._client(region).get_parameter(Name=self._parameter)["Parameter"]["Value"]
        except AWS_FAILURES as error:
            # Only on a failure: the flag is read on every warm container's health check.
            from chalicelib.failures import LOAD, cause_of

            dependency = f"in-service flag of {region}"
            if region in self._last and cause_of(error, dependency).kind == LOAD:
                report_dependency_failure(error, dependency)
                return self._last[region]
            raise DependencyUnavailable(dependency) from error
        flag = RegionFlag.from_text(value)
        self._last[region] = flag
        return flag

    def set_flag(self, region: str, flag: RegionFlag) -> None:
        try:
            self._client(region).put_parameter(
                Name=self._parameter, Value=flag.to_text(), Type="String", Overwrite=True
            )
        except AWS_FAILURES as error:
            raise DependencyUnavailable(f"in-service flag of {region}") from error
        self._last[region] = flag


class SnsOpsNotices:
    """What the orchestrator did, published on the ops-alert topic for people and tools."""

    def __init__(self, *, topic_arn: str, client: ClientFactory) -> None:
        self._topic_arn = topic_arn
        self._client = LazyClient(client)

    def announce(self, subject: str, details: dict[str, Any]) -> None:
        try:
            self._client.publish(TopicArn=self._topic_arn, Subject=subject[:100], Message=json.dumps(details))
        except AWS_FAILURES as error:
            raise DependencyUnavailable("ops-alert topic") from error


SNS_PUBLISH_BATCH_LIMIT = 10


class SnsNotifications:
    """The transactions topic; attributes let subscribers filter without parsing the body.

    Publishes ten events per ``PublishBatch`` request, SNS's limit, instead of one request each.
    """

    def __init__(self, *, topic_arn: str, client: ClientFactory) -> None:
        self._topic_arn = topic_arn
        self._client = LazyClient(client)

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
    # Only the notifier publishes: the outbox is imported by it alone, not on every cold start.
    from chalicelib.outbox import event_name, notification_body

    attributes = {"event": {"DataType": "String", "StringValue": event_name(item)}}
    if item.client:
        attributes[CLIENT_MESSAGE_ATTRIBUTE] = {"DataType": "String", "StringValue": item.client}
    if item.currency is not None:
        attributes["currency"] = {"DataType": "String", "StringValue": item.currency}
    if isinstance(item, PaymentRecord):
        attributes["fraud_review"] = {"DataType": "String", "StringValue": str(item.fraud_review).lower()}
    return {
        "Id": entry_id,
        "Message": json.dumps(notification_body(item), separators=(",", ":")),
        "MessageAttributes": attributes,
    }


class SecretsManagerClientKey:
    """One API client's key value, read from its secret in this region (the replica in the peer).

    Read once and kept ``ttl`` seconds: a rotated value reaches the caller within that time, and
    the previous value keeps working until the client is revoked.
    """

    def __init__(
        self,
        *,
        secret_name: str,
        client: ClientFactory,
        clock: Callable[[], float] = time.monotonic,
        ttl: float = 300.0,
    ) -> None:
        self._secret_name = secret_name
        self._client = LazyClient(client)
        self._value: Cached[str] = Cached(clock, ttl)

    def __call__(self) -> str:
        return self._value.get(self._read)

    def _read(self) -> str:
        try:
            text = self._client.get_secret_value(SecretId=self._secret_name)["SecretString"]
            return str(json.loads(text)[API_KEY_SECRET_FIELD])
        except (*AWS_FAILURES, ValueError, KeyError, TypeError) as error:
            raise DependencyUnavailable(f"API key secret {self._secret_name}") from error


class ApiGatewayPeerApi:
    """The peer region's payment API, looked up by name once per container, and the caller's key.

    The API is read from the peer's API Gateway: if that does not answer, the peer is not taking
    payments either, and the canary counts the probe as failed. The key is the caller's own
    client key (``api_key``), the value a merchant would send.
    """

    def __init__(
        self,
        *,
        region: str,
        rest_api_name: str,
        stage: str,
        client: ClientFactory,
        api_key: Callable[[], str],
    ) -> None:
        self._region = region
        self._rest_api_name = rest_api_name
        self._stage = stage
        self._client = LazyClient(client)
        self._api_key = api_key
        self._url: str | None = None

    def locate(self) -> tuple[str, str]:
        if self._url is None:
            try:
                apis = self._client.get_rest_apis(limit=500)["items"]
            except AWS_FAILURES as error:
                raise DependencyUnavailable(f"API Gateway of {self._region}") from error
            api_ids = [a["id"] for a in apis if a.get("name") == self._rest_api_name]
            if not api_ids:
                raise DependencyUnavailable(f"payment API of {self._region}")
            self._url = f"https://{api_ids[0]}.execute-api.{self._region}.amazonaws.com/{self._stage}"
        return self._url, self._api_key()
