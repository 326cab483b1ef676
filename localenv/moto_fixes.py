"""Corrections to moto, for the local environment and the tests only.

Numbers: DynamoDB stores numbers in a variable-length form with leading and trailing zeros
trimmed ("12.50" comes back as "12.5"); moto keeps the string as written, so code that relied
on the written form would pass every local test and fail deployed. :func:`dynamodb_number`
gives moto DynamoDB's behaviour.

Transactions:
moto 5.2's ``TransactWriteItems`` deep-copies every table it touches (items *and* the stream's
records) before each transaction so it can roll back, and writes to the stream before deciding
the transaction failed. Locally that makes each payment cost time proportional to the table's
size (a 10,000-payment load run would take hours) and leaves stream records for writes that
never happened. DynamoDB itself checks every condition first and then applies all writes or
none; :func:`transact_write_items` does exactly that, under one lock, and
:func:`install` puts it in place of moto's.

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
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import dynamo_type
from moto.dynamodb.responses import DynamoHandler

from localenv.provision import OPERATOR_ACCESS_KEY

MAX_TRANSACTION_ITEMS = 100
_LOCK = threading.Lock()
_CONDITION_FAILED = "The conditional request failed"


def transact_write_items(backend: Any, transact_items: list[dict[str, Any]]) -> None:
    """All of ``transact_items`` or none: every condition is checked before anything is written."""
    if len(transact_items) > MAX_TRANSACTION_ITEMS:
        raise TooManyTransactionsException()
    with _LOCK:
        targets: set[tuple[str, str]] = set()
        plan: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        reasons: list[tuple[str | None, str | None, dict[str, Any] | None]] = []
        for entry in transact_items:
            if len(entry) > 1:
                raise TransactWriteSingleOpException
            op_type, op = next(iter(entry.items()))
            table = backend.get_table(op["TableName"])
            if op_type == "Put":
                key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = op["Item"][table.range_key_attr]
            else:
                key = op["Key"]
            target = (op["TableName"], str(dict(sorted(key.items()))))
            if target in targets:
                raise MultipleTransactionsException()
            targets.add(target)
            plan.append((op_type, op, key))
            current = backend.get_item(op["TableName"], key)
            condition = op.get("ConditionExpression")
            if condition and not get_filter_expression(
                condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
            ).expr(current):
                wants_old = op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current
                reasons.append(
                    (
                        "ConditionalCheckFailed",
                        _CONDITION_FAILED,
                        current.to_json()["Attributes"] if wants_old else None,
                    )
                )
            else:
                reasons.append((None, None, None))
        if any(code is not None for code, _, _ in reasons):
            raise TransactionCanceledException(reasons)
        for op_type, op, key in plan:
            if op_type == "Put":
                backend.put_item(op["TableName"], op["Item"])
            elif op_type == "Delete":
                backend.delete_item(op["TableName"], key)
            elif op_type == "Update":
                backend.update_item(
                    op["TableName"],
                    key,
                    update_expression=op["UpdateExpression"],
                    expression_attribute_names=op.get("ExpressionAttributeNames"),
                    expression_attribute_values=op.get("ExpressionAttributeValues"),
                )


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
            return 400, {"Content-Type": "application/x-amz-json-1.0"}, ACCESS_DENIED
        return call_action(handler)

    dispatch.with_faults = True  # type: ignore[attr-defined]
    return dispatch


def install() -> None:
    """Use the corrections above in this process's moto (idempotent)."""
    if not getattr(DynamoHandler.call_action, "with_faults", False):
        DynamoHandler.call_action = _with_faults(DynamoHandler.call_action)  # type: ignore[method-assign]
    sqs_models.Message.visible = property(_message_visible)  # type: ignore[assignment,method-assign]
    sqs_models.Message.delayed = property(_message_delayed)  # type: ignore[assignment,method-assign]
    sqs_models.SQSBackend.is_message_valid_based_on_retention_period = _within_retention_period  # type: ignore[method-assign,assignment]
    dynamodb_models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign,assignment]
    dynamo_type.DynamoType.__init__ = _dynamo_type_init  # type: ignore[method-assign]
    moto_backends.list_of_moto_modules = list_of_moto_modules
