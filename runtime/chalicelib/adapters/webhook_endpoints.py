"""Merchants' webhook endpoints in their global table (one item an endpoint, the client's partition)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from chalicelib.errors import DependencyUnavailable
from chalicelib.schema import WebhookEndpointsSchema as Schema
from chalicelib.sdk import AWS_FAILURES, ClientFactory, LazyClient

if TYPE_CHECKING:
    # The webhook rules are loaded when an endpoint is read, not with every function's services.
    from chalicelib.webhooks import WebhookEndpoint


class DynamoWebhookEndpoints:
    """The endpoints table of this region (replicated to the peer, encrypted under each region's key)."""

    def __init__(self, *, table_name: str, client: ClientFactory) -> None:
        self._table = table_name
        self._client = LazyClient(client)

    def endpoints_of(self, client: str) -> list[WebhookEndpoint]:
        return sorted(self._query(client), key=lambda e: e.created_at)

    def endpoint(self, client: str, endpoint_id: str) -> WebhookEndpoint | None:
        found = self._query(client, endpoint_id)
        return found[0] if found else None

    def _query(self, client: str, endpoint_id: str | None = None) -> list[WebhookEndpoint]:
        """The client's endpoints, or the one with ``endpoint_id`` (a consistent read of one item)."""
        condition = "#client = :client" + (" AND #id = :id" if endpoint_id is not None else "")
        names = {
            "#client": Schema.PARTITION_KEY,
            **({"#id": Schema.SORT_KEY} if endpoint_id is not None else {}),
        }
        values = {
            ":client": {"S": client},
            **({":id": {"S": endpoint_id}} if endpoint_id is not None else {}),
        }
        items: list[dict[str, Any]] = []
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ConsistentRead": True,
        }
        try:
            while True:
                page = self._client.query(**request)
                items += page.get("Items", [])
                if "LastEvaluatedKey" not in page:
                    break
                request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        except AWS_FAILURES as error:
            raise DependencyUnavailable("webhook endpoints", committed_nothing=True) from error
        return [endpoint_from(item) for item in items]

    def add(self, endpoint: WebhookEndpoint) -> None:
        try:
            self._client.put_item(
                TableName=self._table,
                Item=endpoint_item(endpoint),
                ConditionExpression="attribute_not_exists(#id)",
                ExpressionAttributeNames={"#id": Schema.SORT_KEY},
            )
        except AWS_FAILURES as error:
            raise DependencyUnavailable("webhook endpoints") from error

    def replace(self, endpoint: WebhookEndpoint, *, read_version: int) -> bool:
        try:
            self._client.put_item(
                TableName=self._table,
                Item=endpoint_item(endpoint),
                ConditionExpression="#version = :read",
                ExpressionAttributeNames={"#version": Schema.VERSION},
                ExpressionAttributeValues={":read": {"N": str(read_version)}},
            )
        except AWS_FAILURES as error:
            if _condition_failed(error):
                return False
            raise DependencyUnavailable("webhook endpoints") from error
        return True

    def remove(self, client: str, endpoint_id: str) -> bool:
        try:
            self._client.delete_item(
                TableName=self._table,
                Key={Schema.PARTITION_KEY: {"S": client}, Schema.SORT_KEY: {"S": endpoint_id}},
                ConditionExpression="attribute_exists(#id)",
                ExpressionAttributeNames={"#id": Schema.SORT_KEY},
            )
        except AWS_FAILURES as error:
            if _condition_failed(error):
                return False
            raise DependencyUnavailable("webhook endpoints") from error
        return True


def endpoint_item(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """The endpoint in DynamoDB's wire format."""
    secrets = endpoint.secrets
    return {
        Schema.PARTITION_KEY: {"S": endpoint.client},
        Schema.SORT_KEY: {"S": endpoint.endpoint_id},
        "url": {"S": endpoint.url},
        "events": {"S": json.dumps(list(endpoint.events))},
        Schema.SECRET: {"S": secrets.current},
        **({Schema.PREVIOUS_SECRET: {"S": secrets.previous}} if secrets.previous else {}),
        Schema.PREVIOUS_SECRET_UNTIL: {"N": str(secrets.previous_until)},
        "created_at": {"N": str(endpoint.created_at)},
        "enabled": {"BOOL": endpoint.enabled},
        **({"disabled_reason": {"S": endpoint.disabled_reason}} if endpoint.disabled_reason else {}),
        Schema.VERSION: {"N": str(endpoint.version)},
        **(
            {"failing_since": {"N": str(endpoint.failing_since)}}
            if endpoint.failing_since is not None
            else {}
        ),
        **({"replay_id": {"S": endpoint.replay_id}} if endpoint.replay_id else {}),
    }


def endpoint_from(item: dict[str, Any]) -> WebhookEndpoint:
    """The endpoint an item holds."""
    from chalicelib.webhooks import SigningSecrets, WebhookEndpoint

    return WebhookEndpoint(
        client=item[Schema.PARTITION_KEY]["S"],
        endpoint_id=item[Schema.SORT_KEY]["S"],
        url=item["url"]["S"],
        events=tuple(json.loads(item["events"]["S"])),
        secrets=SigningSecrets(
            current=item[Schema.SECRET]["S"],
            previous=item.get(Schema.PREVIOUS_SECRET, {}).get("S", ""),
            previous_until=float(item.get(Schema.PREVIOUS_SECRET_UNTIL, {}).get("N", "0")),
        ),
        created_at=float(item["created_at"]["N"]),
        enabled=bool(item.get("enabled", {}).get("BOOL", True)),
        disabled_reason=item.get("disabled_reason", {}).get("S", ""),
        version=int(item[Schema.VERSION]["N"]),
        failing_since=float(item["failing_since"]["N"]) if "failing_since" in item else None,
        replay_id=item.get("replay_id", {}).get("S", ""),
    )


def _condition_failed(error: Exception) -> bool:
    return isinstance(error, ClientError) and (
        error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"
    )
