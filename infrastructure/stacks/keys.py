"""The customer-managed KMS key of one region, in a stack of its own.

The global table's replica in the peer region must be encrypted with a key that already exists
in that region when the primary stack creates the table, so each region's key is deployed first
(``cdk deploy --all`` follows the stack dependencies) and found by its alias.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from chalicelib.names import ResourceNames


def key_alias_arn(*, names: ResourceNames, region: str) -> str:
    """The ARN of the payment key's alias in ``region`` (valid before that key exists)."""
    return f"arn:{cdk.Aws.PARTITION}:kms:{region}:{cdk.Aws.ACCOUNT_ID}:{names.data_key_alias}"


class PaymentKeyStack(cdk.Stack):
    """One region's payment data key.

    Default settings: symmetric key, yearly rotation, alias ``alias/payments-{suffix}``, removal
    policy DESTROY (development default; RETAIN with ``production``); CloudWatch may use it, so
    alarms can publish to the encrypted ops-alert topic, and CloudWatch Logs may use it for this
    account's log groups in this region. It encrypts the payments and idempotency tables (and
    their replicas), the payment queues, both topics and the payment log groups.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: ResourceNames,
        production: bool = False,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.key = kms.Key(
            self,
            "PaymentDataKey",
            alias=names.data_key_alias,
            description=f"Encrypts payment data at rest ({names.environment_suffix})",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.RETAIN if production else cdk.RemovalPolicy.DESTROY,
        )
        # Alarms publish to the encrypted ops-alert topic: CloudWatch needs the key, but only on
        # behalf of this account's alarms (no other account's alarm can make it use our key).
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowThisAccountsAlarms",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": self.account}},
            )
        )
        # The transactions topic delivers to the webhook deliveries queue, encrypted with this key:
        # SNS needs it, on behalf of this account's topics only.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowThisAccountsTopicsToDeliver",
                principals=[iam.ServicePrincipal("sns.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": self.account}},
            )
        )
        # CloudWatch Logs encrypts a log group only with a key whose policy lets the regional
        # logs principal use it, scoped by the log group's ARN in the encryption context.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowThisAccountsLogGroups",
                principals=[iam.ServicePrincipal(f"logs.{self.region}.amazonaws.com")],
                actions=[
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": f"arn:{self.partition}:logs:{self.region}:{self.account}:log-group:*"
                    }
                },
            )
        )
