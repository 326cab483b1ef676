"""The payments and idempotency tables: DynamoDB global tables with a replica in the peer region."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import custom_resources as cr
from constructs import Construct

from chalicelib.names import ResourceNames
from chalicelib.schema import (
    EVENTUAL_CONSISTENCY,
    STRONG_CONSISTENCY,
    ClientsTableSchema,
    IdempotencyKeys,
    SecondaryIndex,
    WebhookEndpointsSchema,
)
from chalicelib.schema import PaymentsTableSchema as Schema
from stacks.nag import acknowledge_custom_resource_provider


class PaymentsData(Construct):
    """The payments table and the Idempotency-Key table of one region.

    Default settings: eventually consistent global tables (``strong_consistency_witness`` turns
    on multi-Region strong consistency for payments), on-demand billing, point-in-time recovery, encryption with the region's
    customer-managed key (the replica with the peer region's), removal policy DESTROY
    (development default; ``production`` retains both tables and turns on deletion protection
    in both regions). Payments: stream NEW_AND_OLD_IMAGES
    (replication and the notification outbox), GSI ``customer-index`` (customer_id, timestamp;
    all attributes). Idempotency keys: partition key ``id``, DynamoDB TTL on ``expiration`` to
    clean up (expiry itself is enforced from the stored timestamp, TTL can lag).
    The primary region's stack creates both global tables with replicas in the peer region; the
    peer region's stack references the replicas by name and never creates a second table.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: ResourceNames,
        owns_tables: bool,
        replica_region: str,
        key: kms.IKey,
        replica_key_arn: str,
        strong_consistency_witness: str = "",
        production: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        # The payments table's mode, the same in both regions: the functions tell clients of it.
        self.consistency = STRONG_CONSISTENCY if strong_consistency_witness else EVENTUAL_CONSISTENCY
        self.table: dynamodb.ITableV2
        self.idempotency_table: dynamodb.ITableV2
        self.webhook_endpoints_table: dynamodb.ITableV2
        # What every table here has: on-demand, point-in-time recovery, kept in production.
        regional: dict[str, Any] = {
            "billing": dynamodb.Billing.on_demand(),
            "point_in_time_recovery_specification": dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            "removal_policy": cdk.RemovalPolicy.RETAIN if production else cdk.RemovalPolicy.DESTROY,
            "deletion_protection": production or None,
        }
        # Each region's client directory is its own: it holds that region's API key ids.
        self.clients_table = dynamodb.TableV2(
            self,
            "ClientsTable",
            table_name=names.clients_table,
            partition_key=dynamodb.Attribute(
                name=ClientsTableSchema.PARTITION_KEY, type=dynamodb.AttributeType.STRING
            ),
            encryption=dynamodb.TableEncryptionV2.customer_managed_key(key),
            **regional,
        )
        if not owns_tables:
            self.table = dynamodb.TableV2.from_table_attributes(
                self,
                "PaymentsTableReplica",
                table_name=names.payments_table,
                grant_index_permissions=True,
                encryption_key=key,
            )
            self.idempotency_table = dynamodb.TableV2.from_table_attributes(
                self, "IdempotencyTableReplica", table_name=names.idempotency_table, encryption_key=key
            )
            self.webhook_endpoints_table = dynamodb.TableV2.from_table_attributes(
                self,
                "WebhookEndpointsTableReplica",
                table_name=names.webhook_endpoints_table,
                encryption_key=key,
            )
            self.stream_arn = self._replica_stream_arn(names.payments_table)
            return
        common: dict[str, Any] = {
            **regional,
            "encryption": dynamodb.TableEncryptionV2.customer_managed_key(
                key, replica_key_arns={replica_region: replica_key_arn}
            ),
            "replicas": [
                dynamodb.ReplicaTableProps(region=replica_region, deletion_protection=production or None)
            ],
        }
        payments = dynamodb.TableV2(
            self,
            "PaymentsTable",
            table_name=names.payments_table,
            partition_key=dynamodb.Attribute(name=Schema.PARTITION_KEY, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=Schema.SORT_KEY, type=dynamodb.AttributeType.NUMBER),
            dynamo_stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
            global_secondary_indexes=[_index(index) for index in Schema.INDEXES],
            **common,
            **self._consistency(strong_consistency_witness),
        )
        self.table = payments
        self.stream_arn = payments.table_stream_arn or ""
        self.idempotency_table = dynamodb.TableV2(
            self,
            "IdempotencyTable",
            table_name=names.idempotency_table,
            partition_key=dynamodb.Attribute(
                name=IdempotencyKeys.PARTITION_KEY, type=dynamodb.AttributeType.STRING
            ),
            time_to_live_attribute=IdempotencyKeys.EXPIRY_ATTRIBUTE,
            **common,
        )
        # Merchants' webhook endpoints and their signing secrets, in both regions (each replica
        # encrypted under its own region's key); either region delivers and serves them.
        self.webhook_endpoints_table = dynamodb.TableV2(
            self,
            "WebhookEndpointsTable",
            table_name=names.webhook_endpoints_table,
            partition_key=dynamodb.Attribute(
                name=WebhookEndpointsSchema.PARTITION_KEY, type=dynamodb.AttributeType.STRING
            ),
            sort_key=dynamodb.Attribute(
                name=WebhookEndpointsSchema.SORT_KEY, type=dynamodb.AttributeType.STRING
            ),
            **common,
        )

    @staticmethod
    def _consistency(witness_region: str) -> dict[str, Any]:
        """Multi-Region strong consistency with a witness, when asked for.

        Conditional writes then hold across both regions and acknowledged payments survive a
        region's loss (RPO 0), at the price of a cross-region round trip on every write and
        strongly consistent read. Only the payments table: Idempotency-Key records tolerate
        eventual consistency, and they rely on TTL.
        """
        if not witness_region:
            return {}
        return {
            "multi_region_consistency": dynamodb.MultiRegionConsistency.STRONG,
            "witness_region": witness_region,
        }

    def _replica_stream_arn(self, table_name: str) -> str:
        """The stream of this region's replica: CloudFormation reports only the primary's."""
        describe = cr.AwsSdkCall(
            service="DynamoDB",
            action="describeTable",
            parameters={"TableName": table_name},
            physical_resource_id=cr.PhysicalResourceId.of(f"{table_name}-stream"),
            output_paths=["Table.LatestStreamArn"],
        )
        lookup = cr.AwsCustomResource(
            self,
            "ReplicaStreamArn",
            on_create=describe,
            on_update=describe,
            policy=cr.AwsCustomResourcePolicy.from_sdk_calls(resources=[self.table.table_arn]),
            install_latest_aws_sdk=False,
        )
        # A custom resource runs again only when its properties change, and a recreated replica
        # has a new stream: a property that differs on every synthesis makes each deploy read
        # the ARN again. Unchanged, the event source mapping that uses it stays as it is.
        resource = lookup.node.find_child("Resource").node.default_child
        assert isinstance(resource, cdk.CfnResource)
        resource.add_property_override("ReadAt", datetime.now(UTC).isoformat(timespec="seconds"))
        acknowledge_custom_resource_provider(cdk.Stack.of(self))
        return lookup.get_response_field("Table.LatestStreamArn")

    @property
    def table_arn(self) -> str:
        return self.table.table_arn


_ATTRIBUTE_TYPES = {"S": dynamodb.AttributeType.STRING, "N": dynamodb.AttributeType.NUMBER}


def _index(index: SecondaryIndex) -> dynamodb.GlobalSecondaryIndexPropsV2:
    """``index`` of the schema as the CDK declares it."""
    (partition, partition_type), (sort, sort_type) = index.key_attributes()
    return dynamodb.GlobalSecondaryIndexPropsV2(
        index_name=index.name,
        partition_key=dynamodb.Attribute(name=partition, type=_ATTRIBUTE_TYPES[partition_type]),
        sort_key=dynamodb.Attribute(name=sort, type=_ATTRIBUTE_TYPES[sort_type]),
        projection_type=dynamodb.ProjectionType[index.projection],
    )
