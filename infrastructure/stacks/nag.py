"""Acknowledging cdk-nag findings: every acknowledgement names the rule and a real reason."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Stack, Validations
from aws_cdk.custom_resources import AwsCustomResource
from constructs import IConstruct


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    """Accept the finding ``rule`` (e.g. ``AwsSolutions-IAM5[Resource::*]``) on ``construct``."""
    Validations.of(construct).acknowledge(Acknowledgment(id=rule, reason=reason))


def acknowledge_custom_resource_provider(stack: Stack) -> None:
    """The basic execution policy of CDK's AwsCustomResource provider, a stack-wide singleton."""
    provider_id = "AWS" + AwsCustomResource.PROVIDER_FUNCTION_UUID.replace("-", "")
    acknowledge(
        stack.node.find_child(provider_id),
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
        "CDK's AwsCustomResource provider runs at deploy time only (the replica's stream ARN, the canary "
        "alarm in the peer region); the basic execution policy only lets it write its own logs.",
    )
