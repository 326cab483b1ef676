"""The payment queue with its dead-letter queue, the two SNS topics, and the webhook deliveries queue."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from chalicelib.names import PAYMENT_QUEUE, WEBHOOK_QUEUE, ResourceNames
from stacks.nag import acknowledge


class PaymentMessaging(Construct):
    """Queues and topics of one region.

    Default settings: every queue and topic is encrypted with the region's customer-managed key
    and refuses requests without TLS. Payment queue visibility 300 s (five times the processor's
    60 s timeout), dead-letter queue after 3 receives kept 14 days; notification dead-letter
    queue (stream positions the notifier gave up on) and control-failures queue (invocations of
    the orchestrator and the canary that failed every attempt) kept 14 days. This account's alarms in this
    region may publish to the ``ops-alerts`` topic (topic policy) and use its key (key policy). The
    webhook deliveries queue is subscribed to ``transactions`` (raw messages), visibility 360 s
    (six times its function's 60 s), dead-letter queue after 5 receives kept 14 days.
    """

    def __init__(self, scope: Construct, construct_id: str, *, names: ResourceNames, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self._key = key
        self.payment_queue, self.dead_letter_queue = self._queue_with_dlq(
            "PaymentQueue",
            names.payment_queue,
            "PaymentDLQ",
            names.payment_dlq,
            visibility_seconds=PAYMENT_QUEUE.visibility_timeout_seconds,
            max_receive_count=PAYMENT_QUEUE.max_receive_count,
            dlq_retention_days=PAYMENT_QUEUE.dlq_retention_days,
        )

        self.notification_dlq = self._destination_queue(
            "NotificationDLQ",
            names.notification_dlq,
            "It is the notifier's on-failure destination: Lambda writes the failed stream positions "
            "here and an operator replays them from the stream; nothing consumes it automatically.",
        )
        self.control_failures = self._destination_queue(
            "ControlFailures",
            names.control_failures_queue,
            "It is the orchestrator's and the canary's on-failure destination: Lambda writes each failed "
            "invocation here with its event, and its alarm pages; an operator reads it, nothing consumes it.",
        )
        self.ops_alert_topic = self._topic(
            "OpsAlertTopic", names.ops_alert_topic, "Payment operations alerts"
        )
        self._let_alarms_publish(self.ops_alert_topic)
        self.transaction_topic = self._topic(
            "TransactionTopic", names.transaction_topic, "Processed payments"
        )
        # Merchants' webhooks: every announcement, then each delivery and its retries.
        self.webhook_queue, self.webhook_dlq = self._queue_with_dlq(
            "WebhookQueue",
            names.webhook_queue,
            "WebhookDLQ",
            names.webhook_dlq,
            visibility_seconds=WEBHOOK_QUEUE.visibility_timeout_seconds,
            max_receive_count=WEBHOOK_QUEUE.max_receive_count,
            dlq_retention_days=WEBHOOK_QUEUE.dlq_retention_days,
        )
        # Written out rather than with SqsSubscription, which would also write the key's policy,
        # in the key stack, naming this stack's topic (a cycle): the key already lets this
        # account's topics deliver (stacks.keys).
        sns.Subscription(
            self,
            "WebhookSubscription",
            topic=self.transaction_topic,
            endpoint=self.webhook_queue.queue_arn,
            protocol=sns.SubscriptionProtocol.SQS,
            raw_message_delivery=True,
        )
        self.webhook_queue.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("sns.amazonaws.com")],
                actions=["sqs:SendMessage"],
                resources=[self.webhook_queue.queue_arn],
                conditions={"ArnEquals": {"aws:SourceArn": self.transaction_topic.topic_arn}},
            )
        )

    def _let_alarms_publish(self, topic: sns.Topic) -> None:
        """Let this account's CloudWatch alarms in this region publish to ``topic``.

        A topic policy replaces SNS's default one, and the TLS-only policy holds a single Deny:
        without this Allow, alarms go to ALARM and deliver nothing, so no page and no failover.
        """
        stack = cdk.Stack.of(self)
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowThisAccountsAlarms",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{stack.partition}:cloudwatch:{stack.region}:{stack.account}:alarm:*"
                    },
                },
            )
        )

    def _topic(self, construct_id: str, topic_name: str, display_name: str) -> sns.Topic:
        """A topic under the region's key that refuses requests without TLS."""
        return sns.Topic(
            self,
            construct_id,
            topic_name=topic_name,
            display_name=display_name,
            master_key=self._key,
            enforce_ssl=True,
        )

    def _destination_queue(self, construct_id: str, queue_name: str, why_no_dlq: str) -> sqs.Queue:
        """A Lambda on-failure destination, kept as long as the DLQ: read by operators, consumed by nothing."""
        queue = self._queue(
            construct_id, queue_name, retention_period=cdk.Duration.days(PAYMENT_QUEUE.dlq_retention_days)
        )
        acknowledge(queue, "AwsSolutions-SQS3", why_no_dlq)
        return queue

    def _queue_with_dlq(
        self,
        construct_id: str,
        queue_name: str,
        dlq_id: str,
        dlq_name: str,
        *,
        visibility_seconds: int,
        max_receive_count: int,
        dlq_retention_days: int,
    ) -> tuple[sqs.Queue, sqs.Queue]:
        """A consumed queue and the dead-letter queue it sends a message to after its receives."""
        dlq = self._queue(dlq_id, dlq_name, retention_period=cdk.Duration.days(dlq_retention_days))
        queue = self._queue(
            construct_id,
            queue_name,
            visibility_timeout=cdk.Duration.seconds(visibility_seconds),
            dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=max_receive_count),
        )
        return queue, dlq

    def _queue(self, construct_id: str, queue_name: str, **settings: Any) -> sqs.Queue:
        """A queue under the region's key that refuses requests without TLS."""
        return sqs.Queue(
            self,
            construct_id,
            queue_name=queue_name,
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=self._key,
            enforce_ssl=True,
            **settings,
        )
