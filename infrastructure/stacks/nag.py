"""Acknowledging cdk-nag and checkov findings: every acknowledgement names the rule and a real reason."""

from __future__ import annotations

from typing import Any, cast

from aws_cdk import Acknowledgment, CfnResource, Stack, Validations
from aws_cdk.custom_resources import AwsCustomResource
from constructs import IConstruct

# checkov's findings that do not apply to this service's functions, and why (tools/checkov runs it
# over the synthesized templates in `make test`; tests/infrastructure/test_checks.py).
NO_VPC = (
    "Every dependency is a regional AWS endpoint reached over TLS with IAM: a VPC would add NAT "
    "gateways (cost, and a zonal failure mode) and nothing to reach."
)
ENVIRONMENT_HOLDS_NAMES = (
    "The environment holds resource names and ARNs only, no secret (client keys live in Secrets "
    "Manager); Lambda encrypts it at rest with its own key."
)
CHECKOV_FUNCTION_SKIPS = {"CKV_AWS_117": NO_VPC, "CKV_AWS_173": ENVIRONMENT_HOLDS_NAMES}


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    """Accept the finding ``rule`` (e.g. ``AwsSolutions-IAM5[Resource::*]``) on ``construct``."""
    Validations.of(construct).acknowledge(Acknowledgment(id=rule, reason=reason))


def skip_checkov(resource: CfnResource, check: str, reason: str) -> None:
    """Tell checkov why ``check`` does not apply to ``resource`` (the template metadata it reads)."""
    metadata = cast("dict[str, Any] | None", resource.get_metadata("checkov")) or {"skip": []}
    metadata["skip"] = [s for s in metadata["skip"] if s["id"] != check] + [{"id": check, "comment": reason}]
    resource.add_metadata("checkov", metadata)


def acknowledge_custom_resource_provider(stack: Stack) -> None:
    """The basic execution policy of CDK's AwsCustomResource provider, a stack-wide singleton."""
    provider_id = "AWS" + AwsCustomResource.PROVIDER_FUNCTION_UUID.replace("-", "")
    provider = stack.node.find_child(provider_id)
    function = cast(CfnResource, provider.node.default_child)
    skip_checkov(function, "CKV_AWS_117", NO_VPC)
    for check, reason in (
        ("CKV_AWS_115", "Runs only while CloudFormation deploys the stack, one call at a time."),
        ("CKV_AWS_116", "Invoked synchronously by CloudFormation, which reports its failure itself."),
    ):
        skip_checkov(function, check, reason)
    acknowledge(
        provider,
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
        "CDK's AwsCustomResource provider runs at deploy time only (the replica's stream ARN, the canary "
        "alarm in the peer region); the basic execution policy only lets it write its own logs.",
    )
