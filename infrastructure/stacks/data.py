"""The payments table: a DynamoDB global table with a replica in the peer region."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from chalicelib.names import PaymentsTableSchema as Schema


class PaymentsData(Construct):
    """The payments table of one region.

    Default settings: on-demand billing, point-in-time recovery, stream NEW_AND_OLD_IMAGES,
    GSI ``customer-index`` (customer_id, timestamp; all attributes), AWS-owned encryption,
    removal policy DESTROY (development default; override for production data).
    The primary region's stack creates the global table with a replica in the peer region;
    the peer region's stack references that replica by name and never creates a second table.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        table_name: str,
        owns_table: bool,
        replica_region: str,
        removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.DESTROY,
    ) -> None:
        super().__init__(scope, construct_id)
        self.table: dynamodb.ITableV2
        if owns_table:
            self.table = dynamodb.TableV2(
                self,
                "PaymentsTable",
                table_name=table_name,
                partition_key=dynamodb.Attribute(name=Schema.PARTITION_KEY, type=dynamodb.AttributeType.STRING),
                sort_key=dynamodb.Attribute(name=Schema.SORT_KEY, type=dynamodb.AttributeType.NUMBER),
                billing=dynamodb.Billing.on_demand(),
                point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                    point_in_time_recovery_enabled=True
                ),
                dynamo_stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
                global_secondary_indexes=[
                    dynamodb.GlobalSecondaryIndexPropsV2(
                        index_name=Schema.CUSTOMER_INDEX,
                        partition_key=dynamodb.Attribute(
                            name=Schema.CUSTOMER_INDEX_PARTITION_KEY, type=dynamodb.AttributeType.STRING
                        ),
                        sort_key=dynamodb.Attribute(
                            name=Schema.CUSTOMER_INDEX_SORT_KEY, type=dynamodb.AttributeType.NUMBER
                        ),
                        projection_type=dynamodb.ProjectionType.ALL,
                    )
                ],
                replicas=[dynamodb.ReplicaTableProps(region=replica_region)],
                removal_policy=removal_policy,
            )
        else:
            self.table = dynamodb.TableV2.from_table_attributes(
                self, "PaymentsTableReplica", table_name=table_name, grant_index_permissions=True
            )

    @property
    def table_name(self) -> str:
        return self.table.table_name

    @property
    def table_arn(self) -> str:
        return self.table.table_arn
