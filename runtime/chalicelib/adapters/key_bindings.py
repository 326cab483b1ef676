"""The payment routes' ``Idempotency-Key`` bindings (:mod:`chalicelib.idempotency`) in the idempotency table.

One item per bound key, with the table's expiry attribute, so DynamoDB's TTL removes it once the
key has lived its day (a binding past its expiry and not yet removed is read as none).
"""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.errors import DependencyUnavailable
from chalicelib.idempotency import KeyBinding
from chalicelib.schema import IdempotencyKeys
from chalicelib.sdk import AWS_FAILURES, ClientFactory, LazyClient

_ID = IdempotencyKeys.PARTITION_KEY
_EXPIRY = IdempotencyKeys.EXPIRY_ATTRIBUTE


class DynamoKeyBindings:
    """Reads a key's binding consistently, and binds a key once: the first binding stays."""

    def __init__(self, *, table_name: str, client: ClientFactory) -> None:
        self._table = table_name
        self._client = LazyClient(client)

    def find(self, binding_id: str) -> KeyBinding | None:
        """The live binding stored under ``binding_id``, if any (a read that commits nothing)."""
        try:
            item = self._client.get_item(
                TableName=self._table, Key={_ID: {"S": binding_id}}, ConsistentRead=True
            ).get("Item")
        except AWS_FAILURES as error:
            raise DependencyUnavailable("idempotency store", committed_nothing=True) from error
        if not item or "transaction_id" not in item:
            return None
        binding = KeyBinding(
            binding_id=binding_id,
            body_digest=item["body_digest"]["S"],
            transaction_id=item["transaction_id"]["S"],
            status=int(item["status_code"]["N"]),
            expires_at=int(item[_EXPIRY]["N"]),
        )
        return binding if binding.is_live(time.time()) else None

    def bind(self, binding: KeyBinding) -> None:
        """Store ``binding`` unless a live one holds its key (that one stays: first use wins)."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item=_attributes(binding),
                ConditionExpression="attribute_not_exists(#id) OR #expiry < :now",
                ExpressionAttributeNames={"#id": _ID, "#expiry": _EXPIRY},
                ExpressionAttributeValues={":now": {"N": str(int(time.time()))}},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise DependencyUnavailable("idempotency store") from error
        except AWS_FAILURES as error:
            raise DependencyUnavailable("idempotency store") from error


def _attributes(binding: KeyBinding) -> dict[str, Any]:
    return {
        _ID: {"S": binding.binding_id},
        "body_digest": {"S": binding.body_digest},
        "transaction_id": {"S": binding.transaction_id},
        "status_code": {"N": str(binding.status)},
        _EXPIRY: {"N": str(binding.expires_at)},
    }
