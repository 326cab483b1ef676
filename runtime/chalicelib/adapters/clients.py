"""Who a request's API key belongs to (the region's client directory), and a client's own key value."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from chalicelib.errors import DependencyUnavailable
from chalicelib.regions import Cached
from chalicelib.schema import API_KEY_SECRET_FIELD, ClientsTableSchema
from chalicelib.sdk import AWS_FAILURES, ClientFactory, LazyClient


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
            raise DependencyUnavailable("client directory", committed_nothing=True) from error
        client = (item or {}).get(ClientsTableSchema.CLIENT_ATTRIBUTE, {}).get("S")
        if not isinstance(client, str) or not client:
            return None
        self._known[api_key_id] = client
        return client


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
