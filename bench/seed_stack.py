"""The seed's infrastructure as a CDK stack, synthesized (never deployed) for the cost model.

What ``../shared/seed`` and the specification describe for each region, and nothing beyond it:
the payments table (on demand, point-in-time recovery, stream, customer index, a replica in the
second region) with AWS-owned encryption; the payment queue and its DLQ with SQS-managed
encryption; the ops-alert and transaction topics; the validator, processor and failover
orchestrator on Lambda's default architecture (x86_64); a REST API with INFO execution logs and
metrics; one-week log groups; the four alarms; the dashboard. No WAF, no customer-managed keys,
no tracing, no Route 53 health checks: those are ours, beyond the seed, and the cost table shows
what each of them adds.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

SUFFIX = "seed"
# The handlers' code does not matter to a template's price; the settings do.
PLACEHOLDER_CODE = "def handler(event, context):\n    return {}\n"


class SeedPaymentStack(cdk.Stack):
    """One region of the seed's design."""

    def __init__(self, scope: Construct, stack_id: str, *, replica_region: str | None, **kwargs: Any) -> None:
        super().__init__(scope, stack_id, **kwargs)
        table = dynamodb.Table(
            self,
            "PaymentsTable",
            table_name=f"payments-{SUFFIX}",
            partition_key=dynamodb.Attribute(name="transaction_id", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="timestamp", type=dynamodb.AttributeType.NUMBER),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
            replication_regions=[replica_region] if replica_region else None,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        table.add_global_secondary_index(
            index_name="customer-index",
            partition_key=dynamodb.Attribute(name="customer_id", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="timestamp", type=dynamodb.AttributeType.NUMBER),
        )
        dlq = sqs.Queue(
            self,
            "PaymentDLQ",
            retention_period=cdk.Duration.days(14),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
        )
        queue = sqs.Queue(
            self,
            "PaymentQueue",
            visibility_timeout=cdk.Duration.seconds(300),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=3, queue=dlq),
        )
        ops_alerts = sns.Topic(self, "OpsAlertTopic")
        sns.Topic(self, "TransactionTopic")

        def function(name: str, memory_mb: int, timeout_s: int) -> lambda_.Function:
            log_group = logs.LogGroup(
                self,
                f"{name}Logs",
                retention=logs.RetentionDays.ONE_WEEK,
                removal_policy=cdk.RemovalPolicy.DESTROY,
            )
            return lambda_.Function(
                self,
                name,
                runtime=lambda_.Runtime.PYTHON_3_11,
                handler="index.handler",
                code=lambda_.Code.from_inline(PLACEHOLDER_CODE),
                memory_size=memory_mb,
                timeout=cdk.Duration.seconds(timeout_s),
                log_group=log_group,
            )

        validator = function("Validator", 512, 30)
        processor = function("Processor", 1024, 60)
        processor.add_event_source(sources.SqsEventSource(queue, batch_size=10))
        orchestrator = function("Orchestrator", 256, 60)
        orchestrator.add_event_source(sources.SnsEventSource(ops_alerts))
        api_logs = logs.LogGroup(
            self, "ApiLogs", retention=logs.RetentionDays.ONE_WEEK, removal_policy=cdk.RemovalPolicy.DESTROY
        )
        api = apigateway.LambdaRestApi(
            self,
            "PaymentApi",
            handler=validator,
            rest_api_name=f"payment-api-{SUFFIX}",
            deploy_options=apigateway.StageOptions(
                stage_name="prod",
                throttling_rate_limit=1000,
                throttling_burst_limit=2000,
                logging_level=apigateway.MethodLoggingLevel.INFO,
                metrics_enabled=True,
                access_log_destination=apigateway.LogGroupLogDestination(api_logs),
            ),
        )
        alarms = [
            api.metric_server_error(period=cdk.Duration.minutes(1)).create_alarm(
                self, "Api5xx", threshold=10, evaluation_periods=1
            ),
            processor.metric_errors(period=cdk.Duration.minutes(1)).create_alarm(
                self, "LambdaErrors", threshold=5, evaluation_periods=1
            ),
            table.metric("ThrottledRequests", statistic="Sum", period=cdk.Duration.minutes(1)).create_alarm(
                self, "DynamoThrottles", threshold=10, evaluation_periods=1
            ),
            dlq.metric_approximate_number_of_messages_visible(period=cdk.Duration.minutes(1)).create_alarm(
                self, "DlqMessages", threshold=1, evaluation_periods=1
            ),
        ]
        for alarm in alarms:
            alarm.add_alarm_action(actions.SnsAction(ops_alerts))
        cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=f"payment-dr-{SUFFIX}",
            widgets=[
                [
                    cloudwatch.GraphWidget(title="API", left=[api.metric_count(), api.metric_server_error()]),
                    cloudwatch.GraphWidget(
                        title="Lambda", left=[processor.metric_invocations(), processor.metric_errors()]
                    ),
                    cloudwatch.GraphWidget(
                        title="Queues",
                        left=[
                            queue.metric_approximate_number_of_messages_visible(),
                            dlq.metric_approximate_number_of_messages_visible(),
                        ],
                    ),
                ]
            ],
        )


def seed_templates(primary_region: str, secondary_region: str) -> list[tuple[str, dict[str, Any]]]:
    """(region, template) of both regions of the seed's design, as CloudFormation would get them."""
    app = cdk.App()
    stacks = [
        SeedPaymentStack(
            app, "SeedPrimary", replica_region=secondary_region, env=cdk.Environment(region=primary_region)
        ),
        SeedPaymentStack(
            app, "SeedSecondary", replica_region=None, env=cdk.Environment(region=secondary_region)
        ),
    ]
    assembly = app.synth()
    return [(stack.region, assembly.get_stack_by_name(stack.stack_name).template) for stack in stacks]
