"""The payments table's adapter: one write protocol (claim, then record) and the reads it serves.

How the items are laid out (claim at sort key 0, record above it, rejections below) is in
:mod:`chalicelib.schema`; what the items hold, in DynamoDB's wire format, in :mod:`chalicelib.items`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, cast

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from chalicelib.concurrency import at_once
from chalicelib.cursor import decode_cursor, encode_cursor
from chalicelib.errors import DependencyUnavailable
from chalicelib.items import (
    ANNOUNCED_BY,
    announced_from_attributes,
    claim_attributes,
    events_partition,
    payment_key,
    record_attributes,
    record_from_attributes,
    record_key,
    rejection_attributes,
    rejection_from_attributes,
    rejection_key,
    scoped,
)
from chalicelib.observability import report_dependency_failure
from chalicelib.payments import Announced, PaymentRecord, Rejection
from chalicelib.ports import CustomerPage, PaymentLookup
from chalicelib.schema import PaymentsTableSchema as Schema
from chalicelib.sdk import AWS_FAILURES, ClientFactory, LazyClient

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
# Reads of a batch's unprocessed keys (DynamoDB leaves some when throttled) before giving up, and
# the pause before each read again.
BATCH_READ_ATTEMPTS = 3
BATCH_READ_BACKOFF_SECONDS = 0.05


class DynamoPaymentRepository:
    """Payments in the DynamoDB payments table, laid out as :mod:`chalicelib.schema` says.

    Each payment is two items under its transaction id, written by two plain conditional puts
    (no transaction: multi-Region strong consistency refuses them, and a transactional write
    costs twice the write units): the claim, whose conditional put is the one decision that
    makes processing idempotent (from that put on the payment exists), and the record derived
    from it. The claim holds a copy of the record, so a repeat, a lookup by id and the
    notifier's announcement (:data:`~chalicelib.items.ANNOUNCED_BY`) need nothing else; it
    carries no ``customer_id`` attribute, so it stays out of the customer index. Rejections sit
    beside them, one per rejected queue message.

    Item states: (none) -> claim -> claim + record; (none) -> rejection; only the canary's
    removal of its own payments deletes, and nothing updates. A crash between the claim and the
    record leaves a stored, announced payment whose record the retry of the request or the
    redelivery of its message writes (:meth:`insert_new`).
    """

    def __init__(
        self, *, table_name: str, client: ClientFactory, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self._table = table_name
        self._client = LazyClient(client)
        self._sleep = sleep

    def _claim_key(self, client: str, transaction_id: str) -> dict[str, Any]:
        return payment_key(client, transaction_id, Schema.CLAIM_SORT_KEY)

    def insert_new(
        self,
        record: PaymentRecord,
        *,
        alongside: Callable[[PaymentRecord | None], None] | None = None,
    ) -> PaymentRecord | None:
        """Store ``record`` unless its transaction id is taken; else return the stored record.

        Timeline of one call: claim (conditional put) -> record (conditional put), with
        ``alongside`` running at the same time as the record's put: two sequential writes. A call
        that finds the claim taken completes the record the claim stands for if it is missing, so
        a writer that crashed between the two puts is repaired by the next attempt; the record's
        put is conditional too, so two attempts racing to complete it write it once.
        """
        claimed = self._claim(record)
        stored = None if claimed is None else record_from_attributes(claimed)

        def complete() -> None:
            # From the claim on, the payment is made and is answered as made: a record that cannot
            # be written now is written by the notifier, from the claim's stream record.
            try:
                if claimed is None:
                    self._put_record(record_attributes(record))
                elif not self._item(record_key(claimed), projection=Schema.PARTITION_KEY):
                    self._put_record(record_attributes(stored))  # type: ignore[arg-type]
            except DependencyUnavailable as error:
                report_dependency_failure(error, "payments table (the record, left to the notifier)")

        if alongside is None:
            complete()
        else:
            at_once(complete, lambda: alongside(stored))
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
                    # Refused before any claim of ours landed: the caller may go elsewhere. (Only
                    # on a failure: what classifies it is not imported on every cold start.)
                    from chalicelib.failures import refused_outright

                    raise DependencyUnavailable(
                        "payments table", committed_nothing=attempt == 0 and refused_outright(error)
                    ) from error
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

    def complete_records(self, records: list[PaymentRecord]) -> None:
        """Write the record of each of ``records`` (claims this region made) that is missing.

        One consistent ``BatchGetItem`` finds which are there; the rest are put, conditionally,
        so a record written meanwhile by a retry stays the only one.
        """
        keys = {record_key(claim_attributes(r))[Schema.PARTITION_KEY]["S"]: r for r in records}
        if not keys:
            return
        request: dict[str, Any] = {
            self._table: {
                "Keys": [record_key(claim_attributes(r)) for r in records],
                "ConsistentRead": True,
                "ProjectionExpression": "#pk",
                "ExpressionAttributeNames": {"#pk": Schema.PARTITION_KEY},
            }
        }
        try:
            response = self._client.batch_get_item(RequestItems=request)
        except AWS_FAILURES as error:
            raise DependencyUnavailable("payments table") from error
        found = {
            item[Schema.PARTITION_KEY]["S"] for item in response.get("Responses", {}).get(self._table, [])
        }
        # Keys DynamoDB left unprocessed are simply put: the condition keeps an existing record.
        for partition, record in keys.items():
            if partition not in found:
                self._put_record(record_attributes(record))

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
            raise DependencyUnavailable("payments table", committed_nothing=True) from error
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
            raise DependencyUnavailable("payments table", committed_nothing=True) from error
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
            raise DependencyUnavailable("payments table", committed_nothing=True) from error
        last_key = response.get("LastEvaluatedKey")
        return CustomerPage(
            payments=[record_from_attributes(item) for item in response.get("Items", [])],
            next_cursor=encode_cursor(last_key) if last_key else None,
        )

    def events_of(
        self, client: str, *, since: int, until: int, cursor: dict[str, Any] | None, limit: int = 100
    ) -> tuple[list[Announced], dict[str, Any] | None]:
        """One page of ``client``'s announced payments and rejections stored in ``[since, until)`` (epoch
        ms), from the events index, and the cursor of the next page (None after the last).

        The pages go through the client's shards one after the other, each oldest first; the cursor
        (the shard and DynamoDB's last key) is plain JSON, to be carried in a queue message. The
        index holds keys only (a replay is rare; a copy of every claim would be stored for ever):
        the page's items are read from the table by those keys, in one batch.
        """
        shard = int(cursor["shard"]) if cursor else 0
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": Schema.EVENTS_INDEX,
            "KeyConditionExpression": "#events = :events AND #time BETWEEN :since AND :last",
            "ExpressionAttributeNames": {
                "#events": Schema.EVENTS_INDEX_PARTITION_KEY,
                "#time": Schema.EVENTS_INDEX_SORT_KEY,
            },
            "ExpressionAttributeValues": {
                ":events": {"S": events_partition(client, shard)},
                ":since": {"N": str(since)},
                ":last": {"N": str(until - 1)},
            },
            "Limit": limit,
        }
        if cursor and cursor.get("after"):
            query["ExclusiveStartKey"] = cursor["after"]
        try:
            response = self._client.query(**query)
        except AWS_FAILURES as error:
            raise DependencyUnavailable("payments table", committed_nothing=True) from error
        items = [announced_from_attributes(item) for item in self._items_at(response.get("Items", []))]
        last_key = response.get("LastEvaluatedKey")
        if last_key:
            return items, {"shard": shard, "after": last_key}
        if shard + 1 < Schema.EVENTS_INDEX_SHARDS:
            return items, {"shard": shard + 1, "after": None}
        return items, None

    def _items_at(self, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The items under ``keys`` (at most 100), read in one batch and its leftovers."""
        wanted = [{name: key[name] for name in (Schema.PARTITION_KEY, Schema.SORT_KEY)} for key in keys]
        found: list[dict[str, Any]] = []
        for _ in range(BATCH_READ_ATTEMPTS):
            if not wanted:
                return found
            try:
                response = self._client.batch_get_item(RequestItems={self._table: {"Keys": wanted}})
            except AWS_FAILURES as error:
                raise DependencyUnavailable("payments table", committed_nothing=True) from error
            found += response.get("Responses", {}).get(self._table, [])
            wanted = response.get("UnprocessedKeys", {}).get(self._table, {}).get("Keys", [])
            if wanted:
                self._sleep(BATCH_READ_BACKOFF_SECONDS)
        if wanted:
            raise DependencyUnavailable("payments table", committed_nothing=True)
        return found

    def stored_by(
        self, region: str, cursor: dict[str, Any] | None, *, limit: int = 100
    ) -> tuple[list[Announced], dict[str, Any] | None]:
        """One consistent page of the table's items that ``region`` stored and announces."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "ConsistentRead": True,
            "Limit": limit,
            "FilterExpression": "#announced = :region",
            "ExpressionAttributeNames": {"#announced": ANNOUNCED_BY},
            "ExpressionAttributeValues": {":region": {"S": region}},
        }
        if cursor is not None:
            request["ExclusiveStartKey"] = cursor
        try:
            response = self._client.scan(**request)
        except AWS_FAILURES as error:
            raise DependencyUnavailable("payments table", committed_nothing=True) from error
        items = [announced_from_attributes(item) for item in response.get("Items", [])]
        return items, response.get("LastEvaluatedKey")

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
