"""Create one region's payment resources on a local AWS endpoint from ``chalicelib.names``.

The CDK stack builds the same resources from the same definitions, so a name, key, index or
queue setting changed there is changed here too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3

from chalicelib.canary import canary_alarm_definition
from chalicelib.failover_numbers import LOCAL_FLAG_CACHE_SECONDS
from chalicelib.names import PAYMENT_QUEUE, WEBHOOK_QUEUE, EnvVar, QueueSettings, ResourceNames
from chalicelib.regions import RegionFlag
from chalicelib.schema import ClientsTableSchema, IdempotencyKeys, WebhookEndpointsSchema
from chalicelib.schema import PaymentsTableSchema as Schema

LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_SESSION_TOKEN": "local",
}
# Everything else on the local AWS (replication, operators, the drill's audit) uses this key, so
# a fault aimed at the functions' credentials (localenv.moto_fixes) leaves it alone.
OPERATOR_ACCESS_KEY = "LOCALOPERATOR0000000"  # moto reads keys of 20 capitals or digits
SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class RegionResources:
    """Where one region's local resources are, as the functions' environment describes them."""

    region: str
    environment_suffix: str
    payments_table: str
    idempotency_table: str
    payment_queue_url: str
    payment_dlq_url: str
    transaction_topic_arn: str
    ops_alert_topic_arn: str
    clients_table: str
    peer_region: str = ""
    webhook_endpoints_table: str = ""
    webhook_queue_url: str = ""
    webhook_dlq_url: str = ""

    def function_environment(self, endpoint_url: str) -> dict[str, str]:
        """Environment variables that point the payment functions at these resources."""
        return {
            **LOCAL_CREDENTIALS,
            "AWS_ENDPOINT_URL": endpoint_url,
            EnvVar.REGION: self.region,
            EnvVar.DEFAULT_REGION: self.region,
            EnvVar.ENVIRONMENT_SUFFIX: self.environment_suffix,
            EnvVar.PAYMENTS_TABLE: self.payments_table,
            EnvVar.IDEMPOTENCY_TABLE: self.idempotency_table,
            EnvVar.CLIENTS_TABLE: self.clients_table,
            EnvVar.WEBHOOK_ENDPOINTS_TABLE: self.webhook_endpoints_table,
            EnvVar.WEBHOOK_QUEUE_URL: self.webhook_queue_url,
            EnvVar.WEBHOOK_DLQ_URL: self.webhook_dlq_url,
            EnvVar.FLAG_CACHE_SECONDS: str(LOCAL_FLAG_CACHE_SECONDS),
            EnvVar.PAYMENT_QUEUE_URL: self.payment_queue_url,
            EnvVar.TRANSACTION_TOPIC_ARN: self.transaction_topic_arn,
            EnvVar.OPS_ALERT_TOPIC_ARN: self.ops_alert_topic_arn,
            EnvVar.PEER_REGION: self.peer_region,
        }


def local_client(service: str, endpoint_url: str, region: str, *, operator: bool = False) -> Any:
    """A boto3 client of ``service`` on the local AWS at ``endpoint_url``.

    With the functions' credentials, or an operator's (``operator``): a fault injected into the
    functions' data plane (localenv.moto_fixes) leaves operators, replication and audits alone.
    """
    return boto3.client(service, endpoint_url=endpoint_url, region_name=region, **local_credentials(operator))


def local_credentials(operator: bool = False) -> dict[str, str]:
    """The local AWS's credentials as boto3.client keyword arguments: the functions' or an operator's."""
    return {
        "aws_access_key_id": OPERATOR_ACCESS_KEY if operator else LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "aws_session_token": LOCAL_CREDENTIALS["AWS_SESSION_TOKEN"],
    }


def table_definition(table_name: str) -> dict[str, Any]:
    """``CreateTable`` arguments of the payments table (keys, customer and events indexes, stream)."""
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [
            {"AttributeName": Schema.PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": Schema.SORT_KEY, "KeyType": "RANGE"},
        ],
        # Every key attribute once: the table's, then each index's (their sort keys may be the table's).
        "AttributeDefinitions": [
            {"AttributeName": name, "AttributeType": kind}
            for name, kind in dict(
                [(Schema.PARTITION_KEY, "S"), (Schema.SORT_KEY, "N")]
                + [key for index in Schema.INDEXES for key in index.key_attributes()]
            ).items()
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": index.name,
                "KeySchema": [
                    {"AttributeName": index.partition_key, "KeyType": "HASH"},
                    {"AttributeName": index.sort_key, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": index.projection},
            }
            for index in Schema.INDEXES
        ],
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": Schema.STREAM_VIEW_TYPE},
    }


def idempotency_table_definition(table_name: str) -> dict[str, Any]:
    """``CreateTable`` arguments of the Idempotency-Key table (Powertools' default layout)."""
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": IdempotencyKeys.PARTITION_KEY, "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": IdempotencyKeys.PARTITION_KEY, "AttributeType": "S"}],
        # Global tables replicate through the stream; the local replicator reads it too.
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": Schema.STREAM_VIEW_TYPE},
    }


def clients_table_definition(table_name: str) -> dict[str, Any]:
    """``CreateTable`` arguments of a region's client directory (API key id -> client)."""
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": ClientsTableSchema.PARTITION_KEY, "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": ClientsTableSchema.PARTITION_KEY, "AttributeType": "S"}],
    }


def webhook_endpoints_table_definition(table_name: str) -> dict[str, Any]:
    """``CreateTable`` arguments of the webhook endpoints table (a client's endpoints in its partition)."""
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [
            {"AttributeName": WebhookEndpointsSchema.PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": WebhookEndpointsSchema.SORT_KEY, "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [
            {"AttributeName": WebhookEndpointsSchema.PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": WebhookEndpointsSchema.SORT_KEY, "AttributeType": "S"},
        ],
        # A global table: the local replicator reads the stream, as for the other global tables.
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": Schema.STREAM_VIEW_TYPE},
    }


def provision_region(
    endpoint_url: str,
    region: str,
    environment_suffix: str,
    *,
    peer_region: str = "",
    queue: QueueSettings = PAYMENT_QUEUE,
) -> RegionResources:
    """Create (or find) the table, queues and topics of ``region`` and say where they are."""
    names = ResourceNames(environment_suffix)
    dynamodb = local_client("dynamodb", endpoint_url, region)
    for definition in (
        table_definition(names.payments_table),
        idempotency_table_definition(names.idempotency_table),
        clients_table_definition(names.clients_table),
        webhook_endpoints_table_definition(names.webhook_endpoints_table),
    ):
        try:
            dynamodb.create_table(**definition)
        except dynamodb.exceptions.ResourceInUseException:
            pass

    sqs = local_client("sqs", endpoint_url, region)
    queue_url, dlq_url = _queue_with_dlq(
        sqs,
        names.payment_queue,
        names.payment_dlq,
        visibility_seconds=queue.visibility_timeout_seconds,
        max_receive_count=queue.max_receive_count,
        dlq_retention_days=queue.dlq_retention_days,
    )
    # The webhook deliveries queue, as the stacks make it.
    webhook_queue_url, webhook_dlq_url = _queue_with_dlq(
        sqs,
        names.webhook_queue,
        names.webhook_dlq,
        visibility_seconds=WEBHOOK_QUEUE.visibility_timeout_seconds,
        max_receive_count=WEBHOOK_QUEUE.max_receive_count,
        dlq_retention_days=WEBHOOK_QUEUE.dlq_retention_days,
    )

    ssm = local_client("ssm", endpoint_url, region)
    try:
        ssm.put_parameter(
            Name=names.in_service_parameter, Value=RegionFlag(in_service=True).to_text(), Type="String"
        )
    except ssm.exceptions.ParameterAlreadyExists:
        pass

    sns = local_client("sns", endpoint_url, region)
    ops_alert_topic_arn = sns.create_topic(Name=names.ops_alert_topic)["TopicArn"]
    if peer_region:
        # This region observes its peer: the alarm on the canary against the peer lives here.
        local_client("cloudwatch", endpoint_url, region).put_metric_alarm(
            **canary_alarm_definition(names, peer_region, [ops_alert_topic_arn])
        )
    transaction_topic_arn = sns.create_topic(Name=names.transaction_topic)["TopicArn"]
    # The webhook deliverer hears every announcement, as the stacks subscribe its queue.
    sns.subscribe(
        TopicArn=transaction_topic_arn,
        Protocol="sqs",
        Endpoint=_queue_arn(sqs, webhook_queue_url),
        Attributes={"RawMessageDelivery": "true"},
    )
    return RegionResources(
        region=region,
        environment_suffix=environment_suffix,
        payments_table=names.payments_table,
        idempotency_table=names.idempotency_table,
        clients_table=names.clients_table,
        webhook_endpoints_table=names.webhook_endpoints_table,
        payment_queue_url=queue_url,
        payment_dlq_url=dlq_url,
        transaction_topic_arn=transaction_topic_arn,
        ops_alert_topic_arn=ops_alert_topic_arn,
        peer_region=peer_region,
        webhook_queue_url=webhook_queue_url,
        webhook_dlq_url=webhook_dlq_url,
    )


def _queue_arn(sqs: Any, url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def _queue_with_dlq(
    sqs: Any,
    queue_name: str,
    dlq_name: str,
    *,
    visibility_seconds: int,
    max_receive_count: int,
    dlq_retention_days: int,
) -> tuple[str, str]:
    """A consumed queue and its dead-letter queue (after ``max_receive_count`` receives): their URLs."""
    dlq_url = sqs.create_queue(
        QueueName=dlq_name,
        Attributes={
            "MessageRetentionPeriod": str(dlq_retention_days * SECONDS_PER_DAY),
            "SqsManagedSseEnabled": "true",
        },
    )["QueueUrl"]
    queue_url = sqs.create_queue(
        QueueName=queue_name,
        Attributes={
            "VisibilityTimeout": str(visibility_seconds),
            "SqsManagedSseEnabled": "true",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": _queue_arn(sqs, dlq_url), "maxReceiveCount": str(max_receive_count)}
            ),
        },
    )["QueueUrl"]
    return queue_url, dlq_url
