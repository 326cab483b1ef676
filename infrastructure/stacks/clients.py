"""API clients: one key value per client, valid in both regions, held in a replicated secret.

API Gateway keys are regional: a key created without a value gets a different one in each region,
and a merchant holding one key is locked out of the other region after a failover. Here a
client's value lives in Secrets Manager in the primary region, replicated to the peer, and each
region's ``AWS::ApiGateway::ApiKey`` takes it through a ``{{resolve:secretsmanager:...}}``
reference, so no template, output or log holds it. Each client has a usage plan of its own: its
own throttle, and revoking it touches nobody else.

The stacks create one client, the observer's canary; merchants are created, rotated and revoked
with ``payments-dr clients`` (:mod:`operations.clients`), the same way in both regions.
"""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import custom_resources as cr
from constructs import Construct

from chalicelib.names import ResourceNames
from chalicelib.schema import API_KEY_SECRET_FIELD, ClientsTableSchema, ClientThrottle
from stacks.edge import SAM_STAGE_REFERENCE
from stacks.nag import acknowledge, acknowledge_custom_resource_provider
from stacks.permissions import KEY_ACTIONS

# API Gateway takes values of 20 to 128 characters; letters and digits only, so no shell,
# URL or header quoting ever changes one.
API_KEY_LENGTH = 40


def api_key_reference(secret_name: str) -> str:
    """The dynamic reference CloudFormation resolves to a client's key value in the stack's region."""
    return f"{{{{resolve:secretsmanager:{secret_name}:SecretString:{API_KEY_SECRET_FIELD}}}}}"


class ClientKey(Construct):
    """One client of the payment API in one region: its key (value from its secret) and usage plan.

    Default settings: the secret is created by the primary region's stack only, with a generated
    40-character value, encrypted with the region's key and replicated to the peer region under
    the peer's key; removal policy DESTROY (development; RETAIN with ``production``). Rotation is
    an operator's act (``payments-dr clients rotate``), because the old value must keep working
    until the client has moved to the new one.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: ResourceNames,
        client: str,
        throttle: ClientThrottle,
        owns_secret: bool,
        key: kms.IKey,
        peer_region: str,
        peer_key_arn: str,
        rest_api: cdk.CfnResource,
        stage_ref: str,
        directory: dynamodb.ITableV2,
        production: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        secret_name = names.client_secret(client)
        self.secret: secretsmanager.Secret | None = None
        if owns_secret:
            self.secret = secretsmanager.Secret(
                self,
                "Secret",
                secret_name=secret_name,
                description=f"API key value of the payment client {client} (both regions' keys take it)",
                encryption_key=key,
                generate_secret_string=secretsmanager.SecretStringGenerator(
                    secret_string_template=json.dumps({"client": client}),
                    generate_string_key=API_KEY_SECRET_FIELD,
                    exclude_punctuation=True,
                    include_space=False,
                    password_length=API_KEY_LENGTH,
                ),
                replica_regions=[
                    secretsmanager.ReplicaRegion(
                        region=peer_region,
                        encryption_key=kms.Key.from_key_arn(self, "PeerKey", peer_key_arn),
                    )
                ],
                removal_policy=cdk.RemovalPolicy.RETAIN if production else cdk.RemovalPolicy.DESTROY,
            )
            acknowledge(
                self.secret,
                "AwsSolutions-SMG4",
                "An API key value is rotated by an operator (payments-dr clients rotate), not on a "
                "schedule: the old value keeps working until the client has moved to the new one.",
            )
        self.api_key = apigateway.CfnApiKey(
            self,
            "ApiKey",
            name=names.client_api_key(client),
            description=f"Payment client {client}; value from the secret {secret_name}",
            enabled=True,
            value=api_key_reference(secret_name),
        )
        if self.secret is not None:
            self.api_key.node.add_dependency(self.secret)
        self.usage_plan = apigateway.CfnUsagePlan(
            self,
            "UsagePlan",
            usage_plan_name=names.client_usage_plan(client),
            description=f"What the payment client {client} may send",
            api_stages=[apigateway.CfnUsagePlan.ApiStageProperty(api_id=rest_api.ref, stage=stage_ref)],
            throttle=apigateway.CfnUsagePlan.ThrottleSettingsProperty(
                rate_limit=throttle.rate_limit, burst_limit=throttle.burst_limit
            ),
        )
        acknowledge(self.usage_plan, "CloudFormation-Validate::F1020", SAM_STAGE_REFERENCE)
        apigateway.CfnUsagePlanKey(
            self,
            "InPlan",
            key_id=self.api_key.ref,
            key_type="API_KEY",
            usage_plan_id=self.usage_plan.ref,
        )
        self.directory_entry = self._register(client, directory, key)

    def _register(self, client: str, directory: dynamodb.ITableV2, key: kms.IKey) -> cr.AwsCustomResource:
        """The region's client directory entry of the key: the function finds the key's client there.

        Written again if the key is replaced (a new id), removed with the stack; the same entry
        ``payments-dr clients`` writes for the keys it makes.
        """
        item = {
            ClientsTableSchema.PARTITION_KEY: {"S": self.api_key.ref},
            ClientsTableSchema.CLIENT_ATTRIBUTE: {"S": client},
        }
        put = cr.AwsSdkCall(
            service="DynamoDB",
            action="putItem",
            parameters={"TableName": directory.table_name, "Item": item},
            physical_resource_id=cr.PhysicalResourceId.of(f"{directory.table_name}/{client}"),
        )
        entry = cr.AwsCustomResource(
            self,
            "DirectoryEntry",
            on_create=put,
            on_update=put,
            on_delete=cr.AwsSdkCall(
                service="DynamoDB",
                action="deleteItem",
                parameters={
                    "TableName": directory.table_name,
                    "Key": {ClientsTableSchema.PARTITION_KEY: {"S": self.api_key.ref}},
                },
            ),
            policy=cr.AwsCustomResourcePolicy.from_statements(
                [
                    iam.PolicyStatement(
                        actions=["dynamodb:PutItem", "dynamodb:DeleteItem"], resources=[directory.table_arn]
                    ),
                    iam.PolicyStatement(actions=KEY_ACTIONS, resources=[key.key_arn]),
                ]
            ),
            install_latest_aws_sdk=False,
        )
        acknowledge_custom_resource_provider(cdk.Stack.of(self))
        return entry
