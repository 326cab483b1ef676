"""The client directory adapter: a found client is kept, an unknown key is asked again."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from chalicelib.adapters.clients import DynamoClientDirectory
from chalicelib.errors import DependencyUnavailable


class Directory:
    """DynamoDB's GetItem over a dict of key id -> client, counting the reads."""

    def __init__(self, entries: dict[str, str]) -> None:
        self.entries = entries
        self.reads = 0
        self.failing = False

    def get_item(self, **request: Any) -> dict[str, Any]:
        self.reads += 1
        if self.failing:
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "GetItem")
        assert request["ConsistentRead"] is True  # a key registered a moment ago is found
        key_id = request["Key"]["api_key_id"]["S"]
        found = self.entries.get(key_id)
        return {"Item": {"api_key_id": {"S": key_id}, "client": {"S": found}}} if found else {}


def test_a_found_client_is_kept_for_the_containers_life() -> None:
    table = Directory({"k1": "merchant-a"})
    directory = DynamoClientDirectory(table_name="payment-clients-test", client=lambda: table)

    assert [directory.client_of("k1") for _ in range(3)] == ["merchant-a"] * 3
    assert table.reads == 1


def test_a_key_of_no_client_is_asked_again_so_a_new_key_is_known_at_its_first_request() -> None:
    table = Directory({})
    directory = DynamoClientDirectory(table_name="payment-clients-test", client=lambda: table)

    assert directory.client_of("k2") is None
    table.entries["k2"] = "merchant-b"
    assert directory.client_of("k2") == "merchant-b"
    assert table.reads == 2


def test_an_unreadable_directory_is_a_dependency_failure_not_an_unknown_client() -> None:
    table = Directory({"k1": "merchant-a"})
    table.failing = True
    directory = DynamoClientDirectory(table_name="payment-clients-test", client=lambda: table)

    with pytest.raises(DependencyUnavailable):
        directory.client_of("k1")
