"""What each function's role may do: only the calls its code makes, on the resources it uses.

``tests/infrastructure/test_deployed_templates.py`` evaluates these policies against every call
the functions' code makes, on the templates as CloudFormation deploys them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs

from chalicelib.names import Handler, ResourceNames
from chalicelib.schema import CANARY_CLIENT, CLIENT_SCOPE_SEPARATOR, EVENTUAL_CONSISTENCY, PaymentsTableSchema
from stacks.functions import FunctionSettings

STREAM_READ_ACTIONS = [
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
]
QUEUE_SEND_ACTIONS = ["sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"]
QUEUE_CONSUME_ACTIONS = [
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
]
# What SQS, SNS and DynamoDB need of a caller to use data under the customer-managed key.
KEY_ACTIONS = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
# An Idempotency-Key is read, then bound once with a conditional put; nothing updates or deletes one.
IDEMPOTENCY_ACTIONS = ["dynamodb:GetItem", "dynamodb:PutItem"]
# The claim and the record are conditional puts; the repair of a record reads whether it exists.
PAYMENT_WRITE_ACTIONS = ["dynamodb:PutItem", "dynamodb:GetItem"]


def allow(
    role: iam.Role, actions: list[str], resource: str, conditions: dict[str, Any] | None = None
) -> None:
    """Let ``role`` perform ``actions`` on one resource (only under ``conditions``, when given)."""
    role.add_to_policy(iam.PolicyStatement(actions=actions, resources=[resource], conditions=conditions))


def flag_parameter_arn(stack: cdk.Stack, region: str, names: ResourceNames) -> str:
    """The ARN of ``region``'s in-service flag parameter (the name already starts with /)."""
    return f"arn:{stack.partition}:ssm:{region}:{stack.account}:parameter{names.in_service_parameter}"


class FunctionResources(NamedTuple):
    """What the functions use in their region: what their roles are granted, their settings name."""

    table: dynamodb.ITableV2
    idempotency_table: dynamodb.ITableV2
    clients_table: dynamodb.ITableV2
    stream_arn: str
    key: kms.IKey
    payment_queue: sqs.IQueue
    notification_dlq: sqs.IQueue
    control_failures: sqs.IQueue
    transaction_topic: sns.ITopic
    ops_alert_topic: sns.ITopic
    peer_region: str
    webhook_endpoints_table: dynamodb.ITableV2
    webhook_queue: sqs.IQueue
    webhook_dlq: sqs.IQueue
    # The payments table's consistency mode (chalicelib.schema), which the API tells its clients.
    consistency: str = EVENTUAL_CONSISTENCY


def client_secret_arn(stack: cdk.Stack, names: ResourceNames, client: str) -> str:
    """The ARN of ``client``'s key secret in ``stack``'s region (Secrets Manager adds six characters)."""
    return (
        f"arn:{stack.partition}:secretsmanager:{stack.region}:{stack.account}:secret:"
        f"{names.client_secret(client)}-??????"
    )


def grant_each_function_its_calls(
    roles: dict[str, iam.Role],
    *,
    names: ResourceNames,
    resources: FunctionResources,
    functions: Mapping[str, FunctionSettings],
) -> None:
    """Add to each function's role the statements its code needs, and nothing else."""
    stack = cdk.Stack.of(roles[Handler.API])
    table, idempotency_table, stream_arn, key = (
        resources.table,
        resources.idempotency_table,
        resources.stream_arn,
        resources.key,
    )
    payment_queue, notification_dlq = resources.payment_queue, resources.notification_dlq
    transaction_topic, ops_alert_topic = resources.transaction_topic, resources.ops_alert_topic
    peer_region = resources.peer_region
    validator, processor = roles[Handler.API], roles[Handler.PAYMENT_PROCESSOR]
    notifier = roles[Handler.PAYMENT_NOTIFIER]
    # Statements are written out rather than taken from grant_*(): those add wildcard KMS
    # actions (kms:ReEncrypt*, kms:GenerateDataKey*) that no function here needs.
    allow(validator, QUEUE_SEND_ACTIONS, payment_queue.queue_arn)
    allow(processor, QUEUE_CONSUME_ACTIONS, payment_queue.queue_arn)
    # /process and the read routes run in the API function: it writes, reads and queries; the
    # processor also records rejections.
    for role in (validator, processor):
        allow(role, PAYMENT_WRITE_ACTIONS, table.table_arn)
        allow(role, KEY_ACTIONS, key.key_arn)
    # A lookup by transaction id reads its claim and rejections in one query of the table.
    allow(validator, ["dynamodb:Query"], table.table_arn)
    allow(validator, ["dynamodb:Query"], f"{table.table_arn}/index/{PaymentsTableSchema.CUSTOMER_INDEX}")
    allow(validator, IDEMPOTENCY_ACTIONS, idempotency_table.table_arn)
    # Which client a request's API key belongs to: the owner of every payment it makes or reads.
    allow(validator, ["dynamodb:GetItem"], resources.clients_table.table_arn)
    # A client's webhook endpoints: listed, registered, rotated over the version read, deleted.
    allow(
        validator,
        ["dynamodb:Query", "dynamodb:PutItem", "dynamodb:DeleteItem"],
        resources.webhook_endpoints_table.table_arn,
    )
    # A replay of an endpoint's events is a job on the webhook queue, which the deliverer takes on.
    allow(validator, QUEUE_SEND_ACTIONS, resources.webhook_queue.queue_arn)
    # Only the notifier publishes, from the table's stream (the outbox).
    allow(notifier, STREAM_READ_ACTIONS, stream_arn)
    # It writes the record of a claim whose request could not (the claim answers for the payment).
    allow(notifier, ["dynamodb:BatchGetItem", "dynamodb:PutItem"], table.table_arn)
    allow(notifier, ["sns:Publish"], transaction_topic.topic_arn)
    allow(notifier, QUEUE_SEND_ACTIONS, notification_dlq.queue_arn)
    allow(notifier, KEY_ACTIONS, key.key_arn)
    # /health reads this region's in-service flag; the orchestrator reads both regions' and
    # changes only its own, and says what it did on the ops-alert topic.
    orchestrator = roles[Handler.FAILOVER_ORCHESTRATOR]
    own_flag = flag_parameter_arn(stack, stack.region, names)
    allow(validator, ["ssm:GetParameter"], own_flag)
    allow(orchestrator, ["ssm:GetParameter", "ssm:PutParameter"], own_flag)
    # The webhook deliverer: its queue's messages (and the retries it puts back), the deliveries it
    # gives up on, and the client's endpoints it reads and marks (failing since, disabled).
    deliverer = roles[Handler.WEBHOOK_DELIVERER]
    allow(deliverer, [*QUEUE_CONSUME_ACTIONS, *QUEUE_SEND_ACTIONS], resources.webhook_queue.queue_arn)
    allow(deliverer, QUEUE_SEND_ACTIONS, resources.webhook_dlq.queue_arn)
    allow(deliverer, ["dynamodb:Query", "dynamodb:PutItem"], resources.webhook_endpoints_table.table_arn)
    allow(deliverer, KEY_ACTIONS, key.key_arn)
    # A replay's pages: the client's events from the events index (keys only), then those items.
    allow(deliverer, ["dynamodb:Query"], f"{table.table_arn}/index/{PaymentsTableSchema.EVENTS_INDEX}")
    allow(deliverer, ["dynamodb:BatchGetItem"], table.table_arn)
    # The orchestrator takes the peer out of service when this region's canary sees it failing.
    allow(
        orchestrator, ["ssm:GetParameter", "ssm:PutParameter"], flag_parameter_arn(stack, peer_region, names)
    )
    # The canary finds the peer's REST API by name, and calls it with its own client's key, read
    # from this region's copy of the key's secret (the peer's key takes the same value).
    canary = roles[Handler.PAYMENT_CANARY]
    allow(canary, ["apigateway:GET"], f"arn:{stack.partition}:apigateway:{peer_region}::/restapis")
    allow(canary, ["secretsmanager:GetSecretValue"], client_secret_arn(stack, names, CANARY_CLIENT))
    allow(canary, KEY_ACTIONS, key.key_arn)
    # It removes the canary's own old payments (a synthetic client's): the index query that
    # finds them, and deletes of items whose partition key is the canary's, none other.
    allow(
        canary,
        ["dynamodb:Query"],
        f"{table.table_arn}/index/{PaymentsTableSchema.CUSTOMER_INDEX}",
    )
    allow(
        canary,
        ["dynamodb:DeleteItem"],
        table.table_arn,
        {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{CANARY_CLIENT}{CLIENT_SCOPE_SEPARATOR}*"]}},
    )
    allow(orchestrator, ["sns:Publish"], ops_alert_topic.topic_arn)
    # Once the peer is lost, the observer announces what the peer stored and never announced
    # (chalicelib.orphans): it reads the peer's flag, sweeps this region's table and keeps its place.
    allow(canary, ["ssm:GetParameter"], flag_parameter_arn(stack, peer_region, names))
    allow(
        canary,
        ["ssm:GetParameter", "ssm:PutParameter"],
        f"arn:{stack.partition}:ssm:{stack.region}:{stack.account}:parameter{names.orphan_sweep_parameter}",
    )
    allow(canary, ["dynamodb:Scan"], table.table_arn)
    allow(canary, ["sns:Publish"], transaction_topic.topic_arn)
    # Lambda sends a failed asynchronous invocation to its on-failure destination with the
    # function's own role.
    for handler, settings in functions.items():
        if settings.on_failure_destination:
            allow(roles[handler], ["sqs:SendMessage"], resources.control_failures.queue_arn)
            allow(roles[handler], KEY_ACTIONS, key.key_arn)
    allow(orchestrator, KEY_ACTIONS, key.key_arn)
