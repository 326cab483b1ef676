"""Corrections to moto, for the local environment and the tests only.

Numbers: DynamoDB stores numbers in a variable-length form with leading and trailing zeros
trimmed ("12.50" comes back as "12.5"); moto keeps the string as written, so code that relied
on the written form would pass every local test and fail deployed. :func:`dynamodb_number`
gives moto DynamoDB's behaviour.

Multi-Region strong consistency (MRSC): moto refuses nothing an MRSC table refuses and has no
global tables at all. :func:`install` makes every payments table refuse what AWS documents an
MRSC table refuses (``TransactWriteItems``, ``TransactGetItems``, ``UpdateTimeToLive``) in every
mode, so no code of ours can come to depend on them; and with :data:`STRONG_CONSISTENCY_VARIABLE`
set (or :func:`use_strong_consistency`) it replicates each write of a payments table to the other
regions before answering, and answers ``ReplicatedWriteConflictException`` to a write of an item
that another region is writing at that moment, as an MRSC table does.

Dispatch: moto's server asks, for every request, whether the request's host names one of its
service modules, by listing its package directory and testing each of some 150 entries with
``isdir``. Profiled under ``make load`` (py-spy on the moto process) that was about a sixth of
its busy time; the modules do not change while it runs, so they are listed once.

SQS backlogs: every ``SendMessage`` builds all of a queue's attributes, counting visible,
delayed and in-flight messages, and every message ``ReceiveMessage`` hands out asks for the
queue's retention period the same way; each count converts the time through ``datetime`` twice
per message. A queue a few hundred messages behind therefore slowed every send and receive in
proportion, so a backlog never cleared (py-spy: 90 % of the moto process in those counts).
Messages now compare against ``time.time()``, and the retention check reads the one setting.

Nothing here is deployed.
"""

from __future__ import annotations

import json
import os
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import moto.backends as moto_backends
import moto.dynamodb.models as dynamodb_models
import moto.sqs.models as sqs_models
from moto.dynamodb.models import dynamo_type
from moto.dynamodb.responses import DynamoHandler

from chalicelib.schema import is_payments_table
from localenv.provision import OPERATOR_ACCESS_KEY


def dynamodb_number(text: str) -> str:
    """``text`` as DynamoDB stores and returns it: no leading or trailing zeros, no exponent."""
    value = Decimal(text)
    return "0" if value == 0 else format(value.normalize(), "f")


_MOTO_DYNAMO_TYPE_INIT = dynamo_type.DynamoType.__init__


def _dynamo_type_init(self: Any, type_as_dict: Any) -> None:
    _MOTO_DYNAMO_TYPE_INIT(self, type_as_dict)
    if self.type == "N" and isinstance(self.value, str):
        self.value = dynamodb_number(self.value)
    elif self.type == "NS" and isinstance(self.value, list):
        self.value = [dynamodb_number(v) for v in self.value]


_MOTO_MODULES = tuple(moto_backends.list_of_moto_modules())


def list_of_moto_modules() -> tuple[str, ...]:
    """moto's service modules, listed once per process instead of once per request."""
    return _MOTO_MODULES


def _now_millis() -> float:
    return time.time() * 1000.0


def _message_visible(message: Any) -> bool:
    return bool(_now_millis() > message.visible_at)


def _message_delayed(message: Any) -> bool:
    return bool(_now_millis() < message.delayed_until)


def _within_retention_period(backend: Any, queue_name: str, message: Any) -> bool:
    retention_seconds = int(backend.get_queue(queue_name).message_retention_period)
    return bool(retention_seconds + message.sent_timestamp / 1000 > time.time())


# Where LocalEnvironment writes the faults to apply: {"deny_writes": [region, ...]}.
FAULTS_VARIABLE = "PAYMENTS_LOCAL_FAULTS"
DYNAMODB_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"})
JSON_HEADERS = {"Content-Type": "application/x-amz-json-1.0"}
ACCESS_DENIED = json.dumps(
    {
        "__type": "com.amazonaws.dynamodb.v20120810#AccessDeniedException",
        "message": "local fault injection: the functions' data plane is denied in this region",
    }
)


def _denied_regions() -> set[str]:
    path = os.environ.get(FAULTS_VARIABLE)
    if not path:
        return set()
    try:
        return set(json.loads(Path(path).read_text()).get("deny_writes", []))
    except (OSError, ValueError):
        return set()


def _with_faults(call_action: Any) -> Any:
    """DynamoDB's dispatcher, refusing the functions' writes in a region whose data plane is denied.

    Whoever does not call with the operators' key (replication, the drill's audit, payments-dr)
    is a function.
    """

    def dispatch(handler: Any) -> Any:
        if (
            handler._get_action() in DYNAMODB_WRITES
            and handler.get_access_key() != OPERATOR_ACCESS_KEY
            and handler.region in _denied_regions()
        ):
            return 400, JSON_HEADERS, ACCESS_DENIED
        return call_action(handler)

    dispatch.with_faults = True  # type: ignore[attr-defined]
    return dispatch


# Regions of the payments tables' multi-Region strong consistency, comma separated ("" or unset:
# eventually consistent, replicated by localenv.replication).
STRONG_CONSISTENCY_VARIABLE = "PAYMENTS_LOCAL_STRONG_CONSISTENCY"
# What AWS documents an MRSC table refuses, refused here on every payments table in every mode.
MRSC_REFUSED = frozenset({"TransactWriteItems", "TransactGetItems", "UpdateTimeToLive"})
SINGLE_ITEM_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem"})
MRSC_CONFLICT_STATUS = 409
# An MRSC write waits for another region to confirm it: one round trip between us-east-1 and
# us-east-2 is about 10-15 ms. Locally the copy is instant; the wait keeps the window in which
# another region's write of the same item conflicts as wide as it is on AWS.
CROSS_REGION_ROUND_TRIP_SECONDS = 0.012


class StrongConsistency:
    """The local stand-in for an MRSC payments table: synchronous copies, conflicts between regions.

    A write is applied in its region, then copied to every other region of the set before the
    answer goes back, so an acknowledged write is already in the peer (RPO 0). Items being written
    are registered with their region for the length of the write: a write of the same item from
    another region meanwhile gets ``ReplicatedWriteConflictException``, and its retry then meets
    the winner's item (a conditional put fails on it).
    """

    def __init__(self) -> None:
        self.regions: tuple[str, ...] = ()
        # How many writes were answered ReplicatedWriteConflictException (reported by tests and the drill).
        self.conflicts = 0
        self._in_flight: dict[tuple[str, str], tuple[str, int]] = {}
        self._lock = threading.Lock()

    def claim(self, region: str, keys: list[tuple[str, str]]) -> bool:
        """Register ``keys`` as being written from ``region``; False if another region is writing one."""
        with self._lock:
            if any(self._in_flight.get(key, (region, 0))[0] != region for key in keys):
                self.conflicts += 1
                return False
            for key in keys:
                count = self._in_flight.get(key, (region, 0))[1]
                self._in_flight[key] = (region, count + 1)
            return True

    def release(self, keys: list[tuple[str, str]]) -> None:
        with self._lock:
            for key in keys:
                region, count = self._in_flight[key]
                if count <= 1:
                    del self._in_flight[key]
                else:
                    self._in_flight[key] = (region, count - 1)


STRONG = StrongConsistency()


def use_strong_consistency(regions: list[str]) -> None:
    """Run the payments tables of ``regions`` under MRSC's rules in this process ([]: off)."""
    STRONG.regions = tuple(r for r in regions if r)


def _error(code: str, message: str) -> str:
    return json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message})


def _tables_named(action: str, body: dict[str, Any]) -> list[str]:
    if action in ("TransactWriteItems", "TransactGetItems"):
        return [op.get("TableName", "") for entry in body.get("TransactItems", []) for op in entry.values()]
    if action == "BatchWriteItem":
        return list(body.get("RequestItems", {}))
    return [body.get("TableName", "")]


def _written_keys(backend: Any, action: str, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The (table, key) of every payments-table item a write request changes."""
    if action in SINGLE_ITEM_WRITES:
        requests = [(body["TableName"], body.get("Item") or body.get("Key") or {})]
    elif action == "BatchWriteItem":
        requests = [
            (
                table,
                entry.get("PutRequest", {}).get("Item") or entry.get("DeleteRequest", {}).get("Key") or {},
            )
            for table, entries in body.get("RequestItems", {}).items()
            for entry in entries
        ]
    else:
        return []
    found = []
    for table_name, attributes in requests:
        if not is_payments_table(table_name):
            continue
        table = backend.get_table(table_name)
        names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
        found.append((table_name, {name: attributes[name] for name in names if name in attributes}))
    return found


def _copy_to_peers(account: str, region: str, written: list[tuple[str, dict[str, Any]]]) -> None:
    """Make each written item in every other region of the set what it now is in ``region``."""
    source = dynamodb_models.dynamodb_backends[account][region]
    for peer in STRONG.regions:
        if peer == region:
            continue
        target = dynamodb_models.dynamodb_backends[account][peer]
        for table_name, key in written:
            item = source.get_item(table_name, key)
            if item is None:
                if target.get_item(table_name, key) is not None:
                    target.delete_item(table_name, key)
            else:
                target.put_item(table_name, item.to_json()["Attributes"], overwrite=True)


def _with_strong_consistency(call_action: Any) -> Any:
    """DynamoDB's dispatcher with MRSC's rules on the payments tables (see the module's docstring)."""

    def dispatch(handler: Any) -> Any:
        action = handler._get_action()
        if action not in MRSC_REFUSED and (action not in DYNAMODB_WRITES or not STRONG.regions):
            return call_action(handler)
        body = json.loads(handler.body or "{}")
        if action in MRSC_REFUSED:
            if any(is_payments_table(name) for name in _tables_named(action, body)):
                return (
                    400,
                    JSON_HEADERS,
                    _error(
                        "ValidationException",
                        f"{action} is not supported on a table with multi-Region strong consistency",
                    ),
                )
            return call_action(handler)
        if handler.region not in STRONG.regions:
            return call_action(handler)
        backend = dynamodb_models.dynamodb_backends[handler.current_account][handler.region]
        written = _written_keys(backend, action, body)
        if not written:
            return call_action(handler)
        flight = [(table, json.dumps(key, sort_keys=True)) for table, key in written]
        if not STRONG.claim(handler.region, flight):
            return (
                MRSC_CONFLICT_STATUS,
                JSON_HEADERS,
                _error(
                    "ReplicatedWriteConflictException",
                    "the item is being written in another region of the multi-Region strong consistency set",
                ),
            )
        try:
            status, headers, response = call_action(handler)
            if int(status) == 200:
                time.sleep(CROSS_REGION_ROUND_TRIP_SECONDS)
                _copy_to_peers(handler.current_account, handler.region, written)
            return status, headers, response
        finally:
            STRONG.release(flight)

    return dispatch


def install() -> None:
    """Use the corrections above in this process's moto (idempotent)."""
    if not getattr(DynamoHandler.call_action, "with_faults", False):
        DynamoHandler.call_action = _with_faults(_with_strong_consistency(DynamoHandler.call_action))  # type: ignore[method-assign]
    regions = os.environ.get(STRONG_CONSISTENCY_VARIABLE, "")
    if regions:
        use_strong_consistency(regions.split(","))
    sqs_models.Message.visible = property(_message_visible)  # type: ignore[assignment,method-assign]
    sqs_models.Message.delayed = property(_message_delayed)  # type: ignore[assignment,method-assign]
    sqs_models.SQSBackend.is_message_valid_based_on_retention_period = _within_retention_period  # type: ignore[method-assign,assignment]
    dynamo_type.DynamoType.__init__ = _dynamo_type_init  # type: ignore[method-assign]
    moto_backends.list_of_moto_modules = list_of_moto_modules
