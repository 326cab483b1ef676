"""The Chalice application (API, payment processor, failover orchestrator) with its own roles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from chalice.cdk import Chalice
from constructs import Construct

from chalicelib.names import API_STAGE, FUNCTIONS, EnvVar, FunctionSettings, Handler, PaymentsTableSchema, ResourceNames
from stacks.nag import acknowledge

RUNTIME_DIR = Path(__file__).resolve().parents[2] / "runtime"
THROTTLING_RATE_LIMIT = 1000
THROTTLING_BURST_LIMIT = 2000
LOG_RETENTION = logs.RetentionDays.ONE_WEEK
API_LOGICAL_ID = "RestAPI"
SQS_EVENT_ID = "ProcessPaymentMessagesSqsEventSource"
SNS_EVENT_ID = "OrchestrateFailoverSnsSubscription"
XRAY_ACTIONS = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
PAYMENT_WRITE_ACTIONS = ["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:ConditionCheckItem"]


def function_logical_id(handler: str) -> str:
    """The logical id Chalice gives a handler's function in its SAM template."""
    return "APIHandler" if handler == Handler.API else "".join(p.capitalize() for p in handler.split("_"))


class PaymentApi(Construct):
    """The Chalice app wrapped for CDK: three functions, the REST API, their roles and logs.

    Default settings: regional REST API, stage ``prod``, throttling 1000 rps / burst 2000,
    INFO execution logging without request bodies (they can hold card data), detailed metrics,
    JSON access logs, X-Ray tracing; functions sized per ``chalicelib.names.FUNCTIONS`` with 2
    async retries; the SQS event source reports batch item failures; every function has its
    own role with only the actions it uses; log groups keep one week.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: ResourceNames,
        table: dynamodb.ITableV2,
        payment_queue: sqs.IQueue,
        transaction_topic: sns.ITopic,
        ops_alert_topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.function_names = {
            Handler.API: names.validator_function,
            Handler.PAYMENT_PROCESSOR: names.processor_function,
            Handler.FAILOVER_ORCHESTRATOR: names.orchestrator_function,
        }
        self.log_groups = {
            handler: self._log_group(f"{function_logical_id(handler)}Logs", f"/aws/lambda/{name}")
            for handler, name in self.function_names.items()
        }
        self.roles = {handler: self._role(handler) for handler in self.function_names}

        validator, processor = self.roles[Handler.API], self.roles[Handler.PAYMENT_PROCESSOR]
        # The validator only sends to the queue; the processor only consumes from it.
        payment_queue.grant_send_messages(validator)
        payment_queue.grant_consume_messages(processor)
        # /process and the read routes run in the API function: it writes, reads and queries.
        # Transactional writes are authorised per item as PutItem; only the customer index is queried.
        for role in (validator, processor):
            role.add_to_policy(iam.PolicyStatement(actions=PAYMENT_WRITE_ACTIONS, resources=[table.table_arn]))
        validator.add_to_policy(
            iam.PolicyStatement(
                actions=["dynamodb:Query"], resources=[f"{table.table_arn}/index/{PaymentsTableSchema.CUSTOMER_INDEX}"]
            )
        )
        transaction_topic.grant_publish(validator)
        transaction_topic.grant_publish(processor)

        environment = {
            EnvVar.ENVIRONMENT_SUFFIX: names.environment_suffix,
            EnvVar.PAYMENTS_TABLE: table.table_name,
            EnvVar.PAYMENT_QUEUE_URL: payment_queue.queue_url,
            EnvVar.TRANSACTION_TOPIC_ARN: transaction_topic.topic_arn,
            EnvVar.OPS_ALERT_TOPIC_ARN: ops_alert_topic.topic_arn,
        }
        self.chalice = Chalice(
            self, "Chalice", source_dir=str(RUNTIME_DIR), stage_config=self._stage_config(environment)
        )
        self._configure_functions(payment_queue, ops_alert_topic)
        self.rest_api = self.chalice.get_resource(API_LOGICAL_ID)
        self.access_logs = self._log_group("AccessLogs", f"/aws/apigateway/{names.rest_api}")
        self._configure_api(names)
        self._allow_api_gateway_logging()
        self.api_id = self.rest_api.ref
        self.endpoint_url = f"https://{self.api_id}.execute-api.{stack.region}.{stack.url_suffix}/{API_STAGE}/"
        self.api_host = f"{self.api_id}.execute-api.{stack.region}.{stack.url_suffix}"

    def _log_group(self, construct_id: str, name: str) -> logs.LogGroup:
        return logs.LogGroup(
            self, construct_id, log_group_name=name, retention=LOG_RETENTION, removal_policy=cdk.RemovalPolicy.DESTROY
        )

    def _role(self, handler: str) -> iam.Role:
        role = iam.Role(
            self,
            f"{function_logical_id(handler)}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Execution role of {self.function_names[handler]}",
        )
        self.log_groups[handler].grant_write(role)
        role.add_to_policy(iam.PolicyStatement(actions=XRAY_ACTIONS, resources=["*"]))
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray's PutTraceSegments and PutTelemetryRecords have no resource-level permissions.",
        )
        return role

    def _stage_config(self, environment: dict[str, str]) -> dict[str, Any]:
        def function_config(handler: str, settings: FunctionSettings) -> dict[str, Any]:
            return {
                "lambda_memory_size": settings.memory_mb,
                "lambda_timeout": settings.timeout_seconds,
            }

        return {
            "api_gateway_stage": API_STAGE,
            "api_gateway_endpoint_type": "REGIONAL",
            "xray": True,
            "manage_iam_role": False,
            "iam_role_arn": self.roles[Handler.API].role_arn,
            "environment_variables": environment,
            "lambda_functions": {handler: function_config(handler, s) for handler, s in FUNCTIONS.items()},
        }

    def _configure_functions(self, payment_queue: sqs.IQueue, ops_alert_topic: sns.ITopic) -> None:
        for handler, name in self.function_names.items():
            function = self.chalice.get_resource(function_logical_id(handler))
            function.add_property_override("FunctionName", name)
            # Chalice gives every function the stage's role; each gets its own here.
            function.add_property_override("Role", self.roles[handler].role_arn)
            function.add_property_override(
                "EventInvokeConfig", {"MaximumRetryAttempts": FUNCTIONS[handler].async_retries}
            )
            function.add_property_override("LoggingConfig", {"LogGroup": self.log_groups[handler].log_group_name})
        processor = self.chalice.get_resource(function_logical_id(Handler.PAYMENT_PROCESSOR))
        # The app module names the queue for `chalice deploy`; here the stack's queue is the source.
        processor.add_property_override(f"Events.{SQS_EVENT_ID}.Properties.Queue", payment_queue.queue_arn)
        # Chalice has no option for partial batch responses; without this Lambda ignores them
        # and retries the whole batch when one message fails.
        processor.add_property_override(
            f"Events.{SQS_EVENT_ID}.Properties.FunctionResponseTypes", ["ReportBatchItemFailures"]
        )
        orchestrator = self.chalice.get_resource(function_logical_id(Handler.FAILOVER_ORCHESTRATOR))
        orchestrator.add_property_override(f"Events.{SNS_EVENT_ID}.Properties.Topic", ops_alert_topic.topic_arn)

    def _configure_api(self, names: ResourceNames) -> None:
        api = self.rest_api
        api.add_property_override("Name", names.rest_api)
        api.add_property_override("TracingEnabled", True)
        api.add_property_override(
            "MethodSettings",
            [
                {
                    "ResourcePath": "/*",
                    "HttpMethod": "*",
                    "ThrottlingRateLimit": THROTTLING_RATE_LIMIT,
                    "ThrottlingBurstLimit": THROTTLING_BURST_LIMIT,
                    "LoggingLevel": "INFO",
                    "MetricsEnabled": True,
                    # Full request logging would write payment bodies, and any card data in them.
                    "DataTraceEnabled": False,
                }
            ],
        )
        api.add_property_override(
            "AccessLogSetting",
            {
                "DestinationArn": self.access_logs.log_group_arn,
                "Format": apigateway.AccessLogFormat.json_with_standard_fields(
                    caller=False, http_method=True, ip=True, protocol=True, request_time=True,
                    resource_path=True, response_length=True, status=True, user=False,
                ).to_string(),
            },
        )

    def _allow_api_gateway_logging(self) -> None:
        role = iam.Role(
            self,
            "ApiGatewayLoggingRole",
            assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AmazonAPIGatewayPushToCloudWatchLogs")
            ],
        )
        acknowledge(
            role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AmazonAPIGatewayPushToCloudWatchLogs]",
            "API Gateway's account-level logging role: AWS publishes this managed policy for exactly "
            "this purpose and only API Gateway can assume the role.",
        )
        account = apigateway.CfnAccount(self, "ApiGatewayAccount", cloud_watch_role_arn=role.role_arn)
        self.rest_api.add_dependency(account)
