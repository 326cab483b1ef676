"""Account settings of API Gateway in one region, shared by every environment deployed there.

API Gateway writes execution logs only once the account has a CloudWatch Logs role, and that
role is one setting per account and region (``AWS::ApiGateway::Account``), not a resource of an
environment. Owned by each regional payment stack, a second environment suffix would overwrite
it and deleting any stack would leave API Gateway pointing at a deleted role. Here it lives in
one stack per region whose name carries no suffix, so every environment deploys the same stack,
and both the role and the setting are retained when that stack is deleted.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks.nag import acknowledge


def account_stack_id(region: str) -> str:
    """The stack id (and name) of ``region``'s API Gateway account settings: no suffix in it."""
    return "PaymentsApiGatewayAccount-" + region


class ApiGatewayAccountStack(cdk.Stack):
    """The account's API Gateway CloudWatch Logs role in one region.

    Default settings: a role only API Gateway can assume, with AWS's managed policy for pushing
    logs; both it and the account setting are RETAINed on stack deletion.
    """

    def __init__(self, scope: Construct, construct_id: str, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        role = iam.Role(
            self,
            "ApiGatewayLoggingRole",
            assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name(
                    "service-role/AmazonAPIGatewayPushToCloudWatchLogs"
                )
            ],
        )
        role.apply_removal_policy(cdk.RemovalPolicy.RETAIN)
        acknowledge(
            role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AmazonAPIGatewayPushToCloudWatchLogs]",
            "API Gateway's account-level logging role: AWS publishes this managed policy for exactly "
            "this purpose and only API Gateway can assume the role.",
        )
        account = apigateway.CfnAccount(self, "ApiGatewayAccount", cloud_watch_role_arn=role.role_arn)
        account.apply_removal_policy(cdk.RemovalPolicy.RETAIN)
