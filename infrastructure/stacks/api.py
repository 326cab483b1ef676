"""The Chalice application (API, payment processor, notifier, failover orchestrator) with its own roles."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from chalicelib.items import announced_items_filter
from chalicelib.names import (
    API_STAGE,
    PAYMENT_NOTIFIER,
    PAYMENT_QUEUE,
    WEBHOOK_QUEUE,
    EnvVar,
    Handler,
    ResourceNames,
)
from stacks.edge import THROTTLING_BURST_LIMIT, THROTTLING_RATE_LIMIT, guard_with_waf
from stacks.functions import LAMBDA_ARCHITECTURE, FunctionSettings
from stacks.nag import CHECKOV_FUNCTION_SKIPS, acknowledge, skip_checkov
from stacks.packaging import PrecompiledChalice
from stacks.permissions import FunctionResources, grant_each_function_its_calls

RUNTIME_DIR = Path(__file__).resolve().parents[2] / "runtime"
LOG_RETENTION = logs.RetentionDays.ONE_WEEK
API_LOGICAL_ID = "RestAPI"
SQS_EVENT_ID = "ProcessPaymentMessagesSqsEventSource"
WEBHOOK_EVENT_ID = "DeliverWebhooksSqsEventSource"
SNS_EVENT_ID = "OrchestrateFailoverSnsSubscription"
STREAM_EVENT_ID = "AnnounceProcessedPaymentsDynamodbEventSource"
XRAY_ACTIONS = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]


# API Gateway's name for a stage's execution log group: this prefix, the REST API's id, "/", the stage.
EXECUTION_LOG_GROUP_PREFIX = "API-Gateway-Execution-Logs_"
# Why checkov's reserved-concurrency (CKV_AWS_115) and dead-letter-queue (CKV_AWS_116) checks do
# not apply to a function, beside stacks.nag.CHECKOV_FUNCTION_SKIPS which apply to all of them.
ASYNC_ON_FAILURE = (
    "Invoked asynchronously (SNS, the schedule): an invocation that fails every attempt goes to its "
    "on-failure destination, the control-failures queue that pages; a destination also carries the error."
)
FUNCTION_CHECKOV_SKIPS: dict[str, dict[str, str]] = {
    Handler.API: {
        "CKV_AWS_115": "The payment path is not capped: reserved concurrency is a ceiling, and after a "
        "failover this region takes every client's payments. The control plane's own reservations "
        "keep it from being starved.",
        "CKV_AWS_116": "Invoked synchronously by API Gateway; a dead-letter queue applies only to "
        "asynchronous invocations.",
    },
    Handler.PAYMENT_PROCESSOR: {
        "CKV_AWS_115": "Bounded by its SQS event source's maximum concurrency, without taking reserved "
        "capacity from the account.",
        "CKV_AWS_116": "Invoked by an SQS event source mapping: the payment queue's own dead-letter "
        "queue (with its redrive) catches what fails.",
    },
    Handler.PAYMENT_NOTIFIER: {
        "CKV_AWS_115": "One invocation per stream shard at a time: bounded by the table's shards.",
        "CKV_AWS_116": "Invoked by the table stream's event source mapping, whose on-failure destination "
        "is the notification dead-letter queue.",
    },
    Handler.FAILOVER_ORCHESTRATOR: {"CKV_AWS_116": ASYNC_ON_FAILURE},
    Handler.PAYMENT_CANARY: {"CKV_AWS_116": ASYNC_ON_FAILURE},
    Handler.WEBHOOK_DELIVERER: {
        "CKV_AWS_115": "Bounded by its SQS event source's maximum concurrency, without taking reserved "
        "capacity from the account.",
        "CKV_AWS_116": "Invoked by an SQS event source mapping: the webhook queue's own dead-letter "
        "queue catches what fails, beside the deliveries whose retries ran out.",
    },
}
API_CACHING = (
    "Payment answers belong to one client and change with every write: a cached answer would be "
    "stale, or another client's."
)


def function_logical_id(handler: str) -> str:
    """The logical id Chalice gives a handler's function in its SAM template."""
    return "APIHandler" if handler == Handler.API else "".join(p.capitalize() for p in handler.split("_"))


class PaymentApi(Construct):
    """The Chalice app wrapped for CDK: four functions, the REST API, their roles and logs.

    Default settings: regional REST API, stage ``prod``, throttling 1000 rps / burst 2000,
    INFO execution logging without request bodies (they can hold card data), detailed metrics,
    JSON access logs, X-Ray tracing; payment routes require an API key (each client's usage plan
    holds its keys, :mod:`stacks.clients`), ``/health`` does not; a WAF web ACL with a per-IP rate rule guards the stage;
    functions sized per ``stacks.functions.FUNCTIONS`` (``functions``) with 2 async retries; the SQS and stream
    event sources report batch item failures; the notifier reads only this region's new payments
    from the stream and parks what it cannot publish in the notification DLQ; every function has
    its own role with only the actions it uses; log groups keep one week, encrypted with the
    region's key. The account's API Gateway logging role is not set here (see
    ``stacks.account``): it belongs to the account and region, not to one environment.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: ResourceNames,
        resources: FunctionResources,
        functions: Mapping[str, FunctionSettings],
    ) -> None:
        super().__init__(scope, construct_id)
        self._functions = functions
        stack = cdk.Stack.of(self)
        self.function_names = {
            Handler.API: names.validator_function,
            Handler.PAYMENT_PROCESSOR: names.processor_function,
            Handler.PAYMENT_NOTIFIER: names.notifier_function,
            Handler.FAILOVER_ORCHESTRATOR: names.orchestrator_function,
            Handler.PAYMENT_CANARY: names.canary_function,
            Handler.WEBHOOK_DELIVERER: names.webhook_function,
        }
        # The functions that serve payments: the canary judges the peer, so its errors are not
        # this region's; and the webhook deliverer works for merchants' endpoints, which a client
        # controls: no client may make the region move (neither counts towards its failover alarms).
        self.payment_function_names = [
            name
            for handler, name in self.function_names.items()
            if handler not in (Handler.PAYMENT_CANARY, Handler.WEBHOOK_DELIVERER)
        ]
        self.key = resources.key
        self.log_groups = {
            handler: self._log_group(f"{function_logical_id(handler)}Logs", f"/aws/lambda/{name}")
            for handler, name in self.function_names.items()
        }
        self.roles = {handler: self._role(handler) for handler in self.function_names}
        grant_each_function_its_calls(self.roles, names=names, resources=resources, functions=functions)

        environment = {
            EnvVar.ENVIRONMENT_SUFFIX: names.environment_suffix,
            EnvVar.PAYMENTS_TABLE: resources.table.table_name,
            EnvVar.IDEMPOTENCY_TABLE: resources.idempotency_table.table_name,
            EnvVar.CLIENTS_TABLE: resources.clients_table.table_name,
            EnvVar.WEBHOOK_ENDPOINTS_TABLE: resources.webhook_endpoints_table.table_name,
            EnvVar.WEBHOOK_QUEUE_URL: resources.webhook_queue.queue_url,
            EnvVar.WEBHOOK_DLQ_URL: resources.webhook_dlq.queue_url,
            EnvVar.PAYMENT_QUEUE_URL: resources.payment_queue.queue_url,
            EnvVar.TRANSACTION_TOPIC_ARN: resources.transaction_topic.topic_arn,
            EnvVar.OPS_ALERT_TOPIC_ARN: resources.ops_alert_topic.topic_arn,
            EnvVar.PEER_REGION: resources.peer_region,
            EnvVar.PAYMENTS_CONSISTENCY: resources.consistency,
        }
        self.chalice = PrecompiledChalice(
            self, "Chalice", source_dir=str(RUNTIME_DIR), stage_config=self._stage_config(environment)
        )
        self._configure_functions(
            resources.payment_queue,
            resources.ops_alert_topic,
            resources.control_failures,
            resources.webhook_queue,
        )
        self._configure_notifier(resources.stream_arn, resources.notification_dlq, stack.region)
        self.rest_api = self.chalice.get_resource(API_LOGICAL_ID)
        skip_checkov(self.rest_api, "CKV_AWS_120", API_CACHING)
        self.access_logs = self._log_group("AccessLogs", f"/aws/apigateway/{names.rest_api}")
        # INFO execution logs go to a group API Gateway would otherwise create on first use, with no
        # key, kept forever and left behind with the stack: the stack makes it first.
        self.execution_logs = self._log_group(
            "ExecutionLogs", cdk.Fn.join("", [EXECUTION_LOG_GROUP_PREFIX, self.rest_api.ref, f"/{API_STAGE}"])
        )
        self._configure_api(names)
        # SAM's reference to the stage it generates: it makes the usage plan and the WAF
        # association wait for the stage, which a plain stage name would not.
        self.stage_ref = cdk.Fn.ref(f"{API_LOGICAL_ID}.Stage")
        self.web_acl = guard_with_waf(self, names, self.rest_api, self.stage_ref)
        self.api_id = self.rest_api.ref
        self.endpoint_url = (
            f"https://{self.api_id}.execute-api.{stack.region}.{stack.url_suffix}/{API_STAGE}/"
        )
        self.api_host = f"{self.api_id}.execute-api.{stack.region}.{stack.url_suffix}"

    def _log_group(self, construct_id: str, name: str) -> logs.LogGroup:
        # Payment logs on the region's customer-managed key, like the data they describe.
        return logs.LogGroup(
            self,
            construct_id,
            log_group_name=name,
            retention=LOG_RETENTION,
            encryption_key=self.key,
            removal_policy=cdk.RemovalPolicy.DESTROY,
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

    def _role_policy(self, handler: str) -> cdk.CfnResource:
        """The CloudFormation policy resource holding ``handler``'s role statements."""
        policy = self.roles[handler].node.find_child("DefaultPolicy")
        assert isinstance(policy.node.default_child, cdk.CfnResource)
        return policy.node.default_child

    def _stage_config(self, environment: dict[str, str]) -> dict[str, Any]:
        def function_config(settings: FunctionSettings) -> dict[str, Any]:
            return {
                "lambda_memory_size": settings.memory_mb,
                "lambda_timeout": settings.timeout_seconds,
            }

        return {
            "api_gateway_stage": API_STAGE,
            "api_gateway_endpoint_type": "REGIONAL",
            "xray": True,
            "lambda_architecture": LAMBDA_ARCHITECTURE,
            "manage_iam_role": False,
            "iam_role_arn": self.roles[Handler.API].role_arn,
            "environment_variables": environment,
            "lambda_functions": {handler: function_config(s) for handler, s in self._functions.items()},
        }

    def _configure_functions(
        self,
        payment_queue: sqs.IQueue,
        ops_alert_topic: sns.ITopic,
        control_failures: sqs.IQueue,
        webhook_queue: sqs.IQueue,
    ) -> None:
        for handler, name in self.function_names.items():
            function = self.chalice.get_resource(function_logical_id(handler))
            function.add_property_override("FunctionName", name)
            # Chalice gives every function the stage's role; each gets its own here.
            function.add_property_override("Role", self.roles[handler].role_arn)
            settings = self._functions[handler]
            invoke_config: dict[str, Any] = {"MaximumRetryAttempts": settings.async_retries}
            if settings.on_failure_destination:
                invoke_config["DestinationConfig"] = {
                    "OnFailure": {"Type": "SQS", "Destination": control_failures.queue_arn}
                }
            function.add_property_override("EventInvokeConfig", invoke_config)
            if settings.reserved_concurrency is not None:
                function.add_property_override("ReservedConcurrentExecutions", settings.reserved_concurrency)
            function.add_property_override(
                "LoggingConfig", {"LogGroup": self.log_groups[handler].log_group_name}
            )
            # Lambda checks the role when it creates an event source mapping, and SAM creates
            # the mapping right after the function: the role's policy must exist by then.
            function.add_dependency(self._role_policy(handler))
            for check, reason in {**CHECKOV_FUNCTION_SKIPS, **FUNCTION_CHECKOV_SKIPS[handler]}.items():
                skip_checkov(function, check, reason)
        processor = self.chalice.get_resource(function_logical_id(Handler.PAYMENT_PROCESSOR))
        # The app module names the queue for `chalice deploy`; here the stack's queue is the source.
        processor.add_property_override(f"Events.{SQS_EVENT_ID}.Properties.Queue", payment_queue.queue_arn)
        # Chalice has no option for partial batch responses; without this Lambda ignores them
        # and retries the whole batch when one message fails.
        processor.add_property_override(
            f"Events.{SQS_EVENT_ID}.Properties.FunctionResponseTypes", ["ReportBatchItemFailures"]
        )
        # Under throttling Lambda's poller keeps receiving and each receive counts towards the
        # DLQ's 3: capping the pollers' concurrency keeps payments out of the DLQ without
        # stretching the seed's 300 s visibility timeout.
        processor.add_property_override(
            f"Events.{SQS_EVENT_ID}.Properties.ScalingConfig",
            {"MaximumConcurrency": PAYMENT_QUEUE.processor_max_concurrency},
        )
        processor.add_property_override(
            f"Events.{SQS_EVENT_ID}.Properties.MaximumBatchingWindowInSeconds",
            PAYMENT_QUEUE.processor_batching_window_seconds,
        )
        deliverer = self.chalice.get_resource(function_logical_id(Handler.WEBHOOK_DELIVERER))
        deliverer.add_property_override(
            f"Events.{WEBHOOK_EVENT_ID}.Properties.Queue", webhook_queue.queue_arn
        )
        deliverer.add_property_override(
            f"Events.{WEBHOOK_EVENT_ID}.Properties.FunctionResponseTypes", ["ReportBatchItemFailures"]
        )
        deliverer.add_property_override(
            f"Events.{WEBHOOK_EVENT_ID}.Properties.ScalingConfig",
            {"MaximumConcurrency": WEBHOOK_QUEUE.max_concurrency},
        )
        deliverer.add_property_override(
            f"Events.{WEBHOOK_EVENT_ID}.Properties.MaximumBatchingWindowInSeconds",
            WEBHOOK_QUEUE.batching_window_seconds,
        )
        orchestrator = self.chalice.get_resource(function_logical_id(Handler.FAILOVER_ORCHESTRATOR))
        orchestrator.add_property_override(
            f"Events.{SNS_EVENT_ID}.Properties.Topic", ops_alert_topic.topic_arn
        )

    def _configure_notifier(self, stream_arn: str, notification_dlq: sqs.IQueue, region: str) -> None:
        notifier = self.chalice.get_resource(function_logical_id(Handler.PAYMENT_NOTIFIER))
        source = f"Events.{STREAM_EVENT_ID}.Properties"
        # The notifier's own rule of what it announces, so the filter and the function agree.
        pattern = announced_items_filter(region)
        for name, value in {
            "Stream": stream_arn,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "MaximumRetryAttempts": PAYMENT_NOTIFIER.max_retry_attempts,
            "MaximumRecordAgeInSeconds": PAYMENT_NOTIFIER.max_record_age_seconds,
            "MaximumBatchingWindowInSeconds": PAYMENT_NOTIFIER.batching_window_seconds,
            "DestinationConfig": {"OnFailure": {"Type": "SQS", "Destination": notification_dlq.queue_arn}},
            "FilterCriteria": {"Filters": [{"Pattern": json.dumps(pattern)}]},
        }.items():
            notifier.add_property_override(f"{source}.{name}", value)

    def _configure_api(self, names: ResourceNames) -> None:
        api = self.rest_api
        api.add_property_override("Name", names.rest_api)
        api.add_property_override("TracingEnabled", True)
        # Any OpenApiVersion stops SAM from also creating a stage named "Stage", which would
        # serve the API with no WAF, usage plan, throttling or logs. Chalice writes Swagger 2.0.
        api.add_property_override("OpenApiVersion", "2.0")
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
                    caller=False,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=False,
                ).to_string(),
            },
        )
