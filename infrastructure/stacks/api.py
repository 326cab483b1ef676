"""The Chalice application (API, payment processor, notifier, failover orchestrator) with its own roles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_wafv2 as wafv2
from chalice.cdk import Chalice
from constructs import Construct

from chalicelib.items import announced_items_filter
from chalicelib.names import (
    API_STAGE,
    FUNCTIONS,
    LAMBDA_ARCHITECTURE,
    PAYMENT_NOTIFIER,
    PAYMENT_QUEUE,
    EnvVar,
    FunctionSettings,
    Handler,
    PaymentsTableSchema,
    ResourceNames,
)
from stacks.nag import acknowledge
from stacks.packaging import finish_package

RUNTIME_DIR = Path(__file__).resolve().parents[2] / "runtime"
THROTTLING_RATE_LIMIT = 1000
THROTTLING_BURST_LIMIT = 2000
LOG_RETENTION = logs.RetentionDays.ONE_WEEK
API_LOGICAL_ID = "RestAPI"
SQS_EVENT_ID = "ProcessPaymentMessagesSqsEventSource"
SNS_EVENT_ID = "OrchestrateFailoverSnsSubscription"
STREAM_EVENT_ID = "AnnounceProcessedPaymentsDynamodbEventSource"
STREAM_READ_ACTIONS = [
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
]
QUEUE_SEND_ACTIONS = ["sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"]
QUEUE_CONSUME_ACTIONS = [
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
]
# What SQS, SNS and DynamoDB need of a caller to use data under the customer-managed key.
KEY_ACTIONS = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
IDEMPOTENCY_ACTIONS = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
# Per client IP, per five-minute window: a merchant's servers sending 20 payments a second.
WAF_RATE_LIMIT_PER_IP = 6000
# Common-rule-set rules that refuse what the API promises to take, counted instead of blocked:
# SizeRestrictions_BODY blocks bodies over 8 KB (the API answers 413 only above 64 KiB), and
# NoUserAgent_HEADER blocks server-to-server clients that send no User-Agent.
WAF_COUNTED_COMMON_RULES = ("SizeRestrictions_BODY", "NoUserAgent_HEADER")
WAF_MANAGED_RULE_GROUPS = ("AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet")
SAM_STAGE_REFERENCE = (
    "RestAPI.Stage is SAM's documented reference to the stage it generates; it exists once the "
    "Serverless transform has run, which this offline check does not do."
)
XRAY_ACTIONS = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
PAYMENT_WRITE_ACTIONS = ["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:ConditionCheckItem"]


def allow(role: iam.Role, actions: list[str], resource: str) -> None:
    """Let ``role`` perform ``actions`` on one resource."""
    role.add_to_policy(iam.PolicyStatement(actions=actions, resources=[resource]))


def flag_parameter_arn(stack: cdk.Stack, region: str, names: ResourceNames) -> str:
    """The ARN of ``region``'s in-service flag parameter (the name already starts with /)."""
    return f"arn:{stack.partition}:ssm:{region}:{stack.account}:parameter{names.in_service_parameter}"


def function_logical_id(handler: str) -> str:
    """The logical id Chalice gives a handler's function in its SAM template."""
    return "APIHandler" if handler == Handler.API else "".join(p.capitalize() for p in handler.split("_"))


class PrecompiledChalice(Chalice):
    """Chalice's construct, finishing the package it builds as ``stacks.packaging`` says."""

    def _package_app(self) -> None:
        # The construct packages and creates its code asset in __init__; the package must be
        # complete before the asset fingerprints it, hence this hook rather than a later step.
        super()._package_app()
        finish_package(Path(self._sam_package_dir) / "deployment.zip")


class PaymentApi(Construct):
    """The Chalice app wrapped for CDK: four functions, the REST API, their roles and logs.

    Default settings: regional REST API, stage ``prod``, throttling 1000 rps / burst 2000,
    INFO execution logging without request bodies (they can hold card data), detailed metrics,
    JSON access logs, X-Ray tracing; payment routes require an API key (a usage plan holds the
    clients' keys), ``/health`` does not; a WAF web ACL with a per-IP rate rule guards the stage;
    functions sized per ``chalicelib.names.FUNCTIONS`` with 2 async retries; the SQS and stream
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
        table: dynamodb.ITableV2,
        idempotency_table: dynamodb.ITableV2,
        stream_arn: str,
        key: kms.IKey,
        payment_queue: sqs.IQueue,
        notification_dlq: sqs.IQueue,
        transaction_topic: sns.ITopic,
        ops_alert_topic: sns.ITopic,
        peer_region: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.function_names = {
            Handler.API: names.validator_function,
            Handler.PAYMENT_PROCESSOR: names.processor_function,
            Handler.PAYMENT_NOTIFIER: names.notifier_function,
            Handler.FAILOVER_ORCHESTRATOR: names.orchestrator_function,
        }
        self.key = key
        self.log_groups = {
            handler: self._log_group(f"{function_logical_id(handler)}Logs", f"/aws/lambda/{name}")
            for handler, name in self.function_names.items()
        }
        self.roles = {handler: self._role(handler) for handler in self.function_names}

        validator, processor = self.roles[Handler.API], self.roles[Handler.PAYMENT_PROCESSOR]
        notifier = self.roles[Handler.PAYMENT_NOTIFIER]
        # Statements are written out rather than taken from grant_*(): those add wildcard KMS
        # actions (kms:ReEncrypt*, kms:GenerateDataKey*) that no function here needs.
        allow(validator, QUEUE_SEND_ACTIONS, payment_queue.queue_arn)
        allow(processor, QUEUE_CONSUME_ACTIONS, payment_queue.queue_arn)
        # /process and the read routes run in the API function: it writes, reads and queries; the
        # processor also records rejections. Transactional writes are authorised per item as PutItem.
        for role in (validator, processor):
            allow(role, PAYMENT_WRITE_ACTIONS, table.table_arn)
            allow(role, KEY_ACTIONS, key.key_arn)
        # A lookup by transaction id reads its claim and rejections in one query of the table.
        allow(validator, ["dynamodb:Query"], table.table_arn)
        allow(validator, ["dynamodb:Query"], f"{table.table_arn}/index/{PaymentsTableSchema.CUSTOMER_INDEX}")
        allow(validator, IDEMPOTENCY_ACTIONS, idempotency_table.table_arn)
        # Only the notifier publishes, from the table's stream (the outbox).
        allow(notifier, STREAM_READ_ACTIONS, stream_arn)
        allow(notifier, ["sns:Publish"], transaction_topic.topic_arn)
        allow(notifier, QUEUE_SEND_ACTIONS, notification_dlq.queue_arn)
        allow(notifier, KEY_ACTIONS, key.key_arn)
        # /health reads this region's in-service flag; the orchestrator reads both regions' and
        # changes only its own, and says what it did on the ops-alert topic.
        orchestrator = self.roles[Handler.FAILOVER_ORCHESTRATOR]
        own_flag = flag_parameter_arn(stack, stack.region, names)
        allow(validator, ["ssm:GetParameter"], own_flag)
        allow(orchestrator, ["ssm:GetParameter", "ssm:PutParameter"], own_flag)
        allow(orchestrator, ["ssm:GetParameter"], flag_parameter_arn(stack, peer_region, names))
        allow(orchestrator, ["sns:Publish"], ops_alert_topic.topic_arn)
        allow(orchestrator, KEY_ACTIONS, key.key_arn)

        environment = {
            EnvVar.ENVIRONMENT_SUFFIX: names.environment_suffix,
            EnvVar.PAYMENTS_TABLE: table.table_name,
            EnvVar.IDEMPOTENCY_TABLE: idempotency_table.table_name,
            EnvVar.PAYMENT_QUEUE_URL: payment_queue.queue_url,
            EnvVar.TRANSACTION_TOPIC_ARN: transaction_topic.topic_arn,
            EnvVar.OPS_ALERT_TOPIC_ARN: ops_alert_topic.topic_arn,
            EnvVar.PEER_REGION: peer_region,
        }
        self.chalice = PrecompiledChalice(
            self, "Chalice", source_dir=str(RUNTIME_DIR), stage_config=self._stage_config(environment)
        )
        self._configure_functions(payment_queue, ops_alert_topic)
        self._configure_notifier(stream_arn, notification_dlq, stack.region)
        self.rest_api = self.chalice.get_resource(API_LOGICAL_ID)
        self.access_logs = self._log_group("AccessLogs", f"/aws/apigateway/{names.rest_api}")
        self._configure_api(names)
        # SAM's reference to the stage it generates: it makes the usage plan and the WAF
        # association wait for the stage, which a plain stage name would not.
        self.stage_ref = cdk.Fn.ref(f"{API_LOGICAL_ID}.Stage")
        self.api_key_id = self._require_api_keys(names)
        self.web_acl = self._guard_with_waf(names, stack)
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
            "lambda_functions": {handler: function_config(s) for handler, s in FUNCTIONS.items()},
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
            function.add_property_override(
                "LoggingConfig", {"LogGroup": self.log_groups[handler].log_group_name}
            )
            # Lambda checks the role when it creates an event source mapping, and SAM creates
            # the mapping right after the function: the role's policy must exist by then.
            function.add_dependency(self._role_policy(handler))
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

    def _require_api_keys(self, names: ResourceNames) -> str:
        """A usage plan on the stage and one client key in it; returns the key's id."""
        plan = apigateway.CfnUsagePlan(
            self,
            "UsagePlan",
            usage_plan_name=names.usage_plan,
            description="Clients allowed to call the payment routes",
            api_stages=[
                apigateway.CfnUsagePlan.ApiStageProperty(api_id=self.rest_api.ref, stage=self.stage_ref)
            ],
            throttle=apigateway.CfnUsagePlan.ThrottleSettingsProperty(
                rate_limit=THROTTLING_RATE_LIMIT, burst_limit=THROTTLING_BURST_LIMIT
            ),
        )
        key = apigateway.CfnApiKey(self, "ClientApiKey", name=names.client_api_key, enabled=True)
        apigateway.CfnUsagePlanKey(
            self, "ClientApiKeyInPlan", key_id=key.ref, key_type="API_KEY", usage_plan_id=plan.ref
        )
        acknowledge(plan, "CloudFormation-Validate::F1020", SAM_STAGE_REFERENCE)
        return key.ref

    def _guard_with_waf(self, names: ResourceNames, stack: cdk.Stack) -> wafv2.CfnWebACL:
        """A regional web ACL on the stage: a per-IP rate limit, AWS's common and known-bad-inputs rules."""

        def visibility(metric: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
            return wafv2.CfnWebACL.VisibilityConfigProperty(
                cloud_watch_metrics_enabled=True, metric_name=metric, sampled_requests_enabled=True
            )

        acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            name=names.web_acl,
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=visibility(names.web_acl),
            rules=[
                wafv2.CfnWebACL.RuleProperty(
                    name="rate-limit-per-ip",
                    priority=0,
                    action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                            limit=WAF_RATE_LIMIT_PER_IP, aggregate_key_type="IP"
                        )
                    ),
                    visibility_config=visibility("rate-limit-per-ip"),
                ),
                *(
                    wafv2.CfnWebACL.RuleProperty(
                        name=group,
                        priority=priority,
                        override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                        statement=wafv2.CfnWebACL.StatementProperty(
                            managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                                vendor_name="AWS",
                                name=group,
                                rule_action_overrides=[
                                    wafv2.CfnWebACL.RuleActionOverrideProperty(
                                        name=rule, action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={})
                                    )
                                    for rule in WAF_COUNTED_COMMON_RULES
                                ]
                                if group == "AWSManagedRulesCommonRuleSet"
                                else None,
                            )
                        ),
                        visibility_config=visibility(group),
                    )
                    for priority, group in enumerate(WAF_MANAGED_RULE_GROUPS, start=1)
                ),
            ],
        )
        association = wafv2.CfnWebACLAssociation(
            self,
            "WebAclOnStage",
            web_acl_arn=acl.attr_arn,
            resource_arn=cdk.Fn.join(
                "",
                [
                    f"arn:{stack.partition}:apigateway:{stack.region}::/restapis/",
                    self.rest_api.ref,
                    "/stages/",
                    self.stage_ref,
                ],
            ),
        )
        acknowledge(association, "CloudFormation-Validate::F1020", SAM_STAGE_REFERENCE)
        return acl

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
