"""The payment queue with its dead-letter queue, and the two SNS topics."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from chalicelib.names import PAYMENT_QUEUE, ResourceNames


class PaymentMessaging(Construct):
    """Queues and topics of one region.

    Default settings: payment queue visibility 300 s (five times the processor's 60 s timeout),
    SQS-managed encryption, TLS-only access, dead-letter queue after 3 receives kept 14 days;
    ``transactions`` topic encrypted with the AWS-managed SNS key; ``ops-alerts`` topic encrypted
    with a customer-managed key that CloudWatch alarms are allowed to use (they cannot publish
    to a topic under the AWS-managed key).
    """

    def __init__(self, scope: Construct, construct_id: str, *, names: ResourceNames) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = self._queue(
            "PaymentDLQ",
            names.payment_dlq,
            retention_period=cdk.Duration.days(PAYMENT_QUEUE.dlq_retention_days),
        )
        self.payment_queue = self._queue(
            "PaymentQueue",
            names.payment_queue,
            visibility_timeout=cdk.Duration.seconds(PAYMENT_QUEUE.visibility_timeout_seconds),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=PAYMENT_QUEUE.max_receive_count
            ),
        )

        self.ops_alert_key = kms.Key(
            self,
            "OpsAlertKey",
            description=f"Encrypts the {names.ops_alert_topic} topic; CloudWatch alarms may use it",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.ops_alert_key.grant(
            iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*"
        )
        self.ops_alert_topic = sns.Topic(
            self,
            "OpsAlertTopic",
            topic_name=names.ops_alert_topic,
            display_name="Payment operations alerts",
            master_key=self.ops_alert_key,
            enforce_ssl=True,
        )
        self.transaction_topic = sns.Topic(
            self,
            "TransactionTopic",
            topic_name=names.transaction_topic,
            display_name="Processed payments",
            master_key=kms.Alias.from_alias_name(self, "SnsManagedKey", "alias/aws/sns"),
            enforce_ssl=True,
        )

    def _queue(self, construct_id: str, queue_name: str, **settings: Any) -> sqs.Queue:
        """An SQS-managed-encrypted queue that refuses requests without TLS."""
        return sqs.Queue(
            self,
            construct_id,
            queue_name=queue_name,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            **settings,
        )
